#include "base/subprocess.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

using ::testing::HasSubstr;

SubprocessOptions Sh(const std::string& script) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return options;
}

// Whether a process with this pid exists (and is not a zombie we own).
bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Waits (bounded) for `pid` to disappear: killed processes that are not our
// children are reaped by init a moment later.
bool WaitGone(pid_t pid) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (!ProcessExists(pid)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(RunCommandTest, CapturesStdoutAndStderr) {
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(Sh("echo out; echo err >&2"), absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "out\n");
  EXPECT_EQ(out->stderr_data, "err\n");
  EXPECT_TRUE(out->exit.success());
}

TEST(RunCommandTest, FeedsStdin) {
  // Larger than a pipe buffer, so writing and reading must interleave.
  std::string input(1 << 20, 'x');
  input += "end";
  absl::StatusOr<Subprocess::Output> out =
      RunCommand({.argv = {"cat"}}, absl::Seconds(30), input);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, input);
}

TEST(RunCommandTest, NonZeroExitIsErrorWithStderrTail) {
  absl::StatusOr<Subprocess::Output> out = RunCommand(
      Sh("echo 'mke2fs: bad blocks' >&2; exit 3"), absl::Seconds(30));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(out.status().message(),
            "'/bin/sh -c echo 'mke2fs: bad blocks' >&2; exit 3' exited with "
            "status 3: mke2fs: bad blocks");
}

TEST(RunCommandTest, MissingProgramIsNotFound) {
  absl::StatusOr<Subprocess::Output> out =
      RunCommand({.argv = {"fcvm-no-such-program"}}, absl::Seconds(30));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(out.status().message(),
            "start 'fcvm-no-such-program': No such file or directory");
}

TEST(RunCommandTest, EmptyArgvIsInvalid) {
  EXPECT_EQ(RunCommand({}, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RunCommandTest, TimeoutKillsAndSaysSo) {
  absl::Time start = absl::Now();
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(Sh("sleep 60"), absl::Milliseconds(200));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("did not finish within 200ms; killed"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(RunCommandTest, ExplicitEnvironmentReplacesParent) {
  ::setenv("FCVM_TEST_PARENT_ONLY", "leak", 1);
  SubprocessOptions options = Sh("echo \"$FOO|$FCVM_TEST_PARENT_ONLY\"");
  options.env = std::vector<std::string>{"FOO=bar"};
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "bar|\n");
}

TEST(RunCommandTest, InheritsEnvironmentByDefault) {
  ::setenv("FCVM_TEST_INHERITED", "yes", 1);
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(Sh("echo $FCVM_TEST_INHERITED"), absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "yes\n");
}

TEST(RunCommandTest, WorkingDirectory) {
  SubprocessOptions options = Sh("pwd");
  options.working_dir = "/";
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "/\n");
}

TEST(RunCommandTest, OnlyStdioIsInherited) {
  // A descriptor without O_CLOEXEC must still not reach the child.
  int leaked = ::dup(STDERR_FILENO);
  ASSERT_GE(leaked, 3);
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(Sh(absl::StrCat("test -e /proc/self/fd/", leaked,
                                 " && echo open || "
                                 "echo closed")),
                 absl::Seconds(30));
  ::close(leaked);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "closed\n");
}

// The set of signals /proc/self/status says `script`'s shell ignores.
uint64_t IgnoredSignalsOfChild() {
  absl::StatusOr<Subprocess::Output> out = RunCommand(
      Sh("sed -n 's/^SigIgn:\\t//p' /proc/self/status"), absl::Seconds(30));
  EXPECT_TRUE(out.ok()) << out.status();
  uint64_t mask = ~0ull;
  EXPECT_TRUE(
      absl::SimpleHexAtoi(absl::StripAsciiWhitespace(out->stdout_data), &mask))
      << out->stdout_data;
  return mask;
}

TEST(SubprocessTest, IgnoredSigpipeIsResetForChild) {
  const uint64_t sigpipe_bit = 1ull << (SIGPIPE - 1);
  struct sigaction old_action;
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_action), 0);
  uint64_t ignored = IgnoredSignalsOfChild();
  ::sigaction(SIGPIPE, &old_action, nullptr);
  EXPECT_EQ(ignored & sigpipe_bit, 0u);
}

TEST(SubprocessTest, WaitReportsExitCode) {
  absl::StatusOr<Subprocess> child = Subprocess::Start(Sh("exit 7"));
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<ExitStatus> exit = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_FALSE(exit->signaled);
  EXPECT_EQ(exit->code, 7);
  EXPECT_EQ(exit->ToString(), "exited with status 7");
  EXPECT_TRUE(child->finished());
}

TEST(SubprocessTest, WaitTimeoutLeavesChildRunning) {
  absl::StatusOr<Subprocess> child = Subprocess::Start(Sh("sleep 60"));
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<ExitStatus> exit = child->Wait(absl::Milliseconds(50));
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(child->finished());
  EXPECT_TRUE(ProcessExists(child->pid()));
  absl::StatusOr<ExitStatus> killed = child->Kill();
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_TRUE(killed->signaled);
  EXPECT_EQ(killed->signal, SIGKILL);
  EXPECT_EQ(killed->ToString(), "was killed by signal 9 (Killed)");
  EXPECT_EQ(killed->ToStatus("sleep").message(),
            "'sleep' was killed by signal 9 (Killed)");
}

TEST(SubprocessTest, SignalTerm) {
  absl::StatusOr<Subprocess> child = Subprocess::Start(Sh("sleep 60"));
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Signal(SIGTERM).ok());
  absl::StatusOr<ExitStatus> exit = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_EQ(child->Signal(SIGTERM).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SubprocessTest, DestructorKillsChildAndItsGroup) {
  pid_t child_pid, grandchild_pid;
  {
    SubprocessOptions options = Sh("sleep 60 & echo $!; wait");
    options.stdout_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> child = Subprocess::Start(options);
    ASSERT_TRUE(child.ok()) << child.status();
    child_pid = child->pid();
    // Read the grandchild's pid from the first line.
    std::string line;
    char c;
    while (::read(child->stdout_pipe().get(), &c, 1) == 1 && c != '\n') {
      line.push_back(c);
    }
    ASSERT_TRUE(absl::SimpleAtoi(line, &grandchild_pid)) << line;
    EXPECT_TRUE(ProcessExists(grandchild_pid));
  }
  // The child was our own and is reaped; the grandchild is reaped by init.
  EXPECT_FALSE(ProcessExists(child_pid));
  EXPECT_TRUE(WaitGone(grandchild_pid));
}

TEST(SubprocessTest, PipesForStreamingUse) {
  SubprocessOptions options{.argv = {"cat"}};
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> child = Subprocess::Start(options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(WriteAll(child->stdin_pipe().get(), "ping\n", "cat").ok());
  child->stdin_pipe().reset();
  absl::StatusOr<std::string> out =
      ReadAll(child->stdout_pipe().get(), "cat stdout");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "ping\n");
  EXPECT_TRUE(child->Wait(absl::Seconds(30))->success());
}

TEST(SubprocessTest, InPathSearchesLikeExecvp) {
  EXPECT_TRUE(InPath("sh"));
  EXPECT_TRUE(InPath("/bin/sh"));
  EXPECT_FALSE(InPath("fcvm-no-such-program"));
  EXPECT_FALSE(InPath("/nonexistent/sh"));
}

// A normal user's PATH on Debian has no /usr/sbin, where mke2fs and
// e2fsck live: they are still found, and started, by name.
TEST(SubprocessTest, SystemToolsAreFoundWithoutSbinInPath) {
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/games", 1);
  absl::StatusOr<std::string> mke2fs = FindProgram("mke2fs");
  SubprocessOptions options;
  options.argv = {"mke2fs", "-V"};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Seconds(30));
  setenv("PATH", saved.c_str(), 1);
  ASSERT_TRUE(mke2fs.ok()) << mke2fs.status();
  EXPECT_THAT(*mke2fs, ::testing::AnyOf("/usr/sbin/mke2fs", "/sbin/mke2fs"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->stderr_data, ::testing::HasSubstr("mke2fs 1.47"));
  EXPECT_EQ(FindProgram("fcvm-no-such-program").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SubprocessTest, NullStdinReadsEof) {
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(Sh("cat; echo done"), absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "done\n");
}

TEST(SubprocessTest, FileModeAppendsBothStreams) {
  const std::string log = absl::StrCat(std::getenv("TEST_TMPDIR"), "/out.log");
  ASSERT_TRUE(WriteFileAtomically(log, "before\n", 0600).ok());
  SubprocessOptions options = Sh("echo out; echo err >&2");
  options.stdout_mode = options.stderr_mode = StdioMode::kFile;
  options.stdout_file = options.stderr_file = log;
  absl::StatusOr<Subprocess> child = Subprocess::Start(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(child->Wait(absl::Seconds(30))->success());
  EXPECT_EQ(*ReadFile(log), "before\nout\nerr\n");

  options.stdin_mode = StdioMode::kFile;  // Input from a "file": refused.
  EXPECT_FALSE(Subprocess::Start(options).ok());
}

}  // namespace
}  // namespace fcvm
