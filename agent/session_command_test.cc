// The argv the agent runs for each channel request, flag by flag, and how
// it finds a session's processes in /proc (a fake one, and the real one
// with real children).
#include "agent/session_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

using Argv = std::vector<std::string>;

channel::Exec MakeExec(const Argv& argv) {
  channel::Exec exec;
  for (const std::string& arg : argv) exec.add_argv(arg);
  return exec;
}

absl::StatusOr<SessionCommand> Exec(const channel::Exec& exec) {
  return ExecCommand(exec, "/usr/bin/podman", "fcvm-workload", "ab12-7");
}

TEST(ExecCommandTest, PlainCommandHasNoStdinAndCarriesTheMarker) {
  absl::StatusOr<SessionCommand> command = Exec(MakeExec({"ls", "-l", "/"}));
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-e", "FCVM_SESSION=ab12-7",
                  "fcvm-workload", "ls", "-l", "/"}));
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=ab12-7"}));
  EXPECT_EQ(command->working_dir, "");
}

TEST(ExecCommandTest, StdinAddsInteractive) {
  channel::Exec exec = MakeExec({"cat"});
  exec.set_stdin(true);
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-i", "-e", "FCVM_SESSION=ab12-7",
                  "fcvm-workload", "cat"}));
}

TEST(ExecCommandTest, DetachIsPodmansAndTakesNoStdinOrTerminal) {
  channel::Exec exec = MakeExec({"sleep", "9"});
  exec.set_detach(true);
  exec.set_stdin(true);
  exec.set_tty(true);
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-d", "-e", "FCVM_SESSION=ab12-7",
                  "fcvm-workload", "sleep", "9"}));
}

TEST(ExecCommandTest, TtyAddsInteractiveTerminalAndTerm) {
  channel::Exec exec = MakeExec({"sh"});
  exec.set_tty(true);
  exec.mutable_size()->set_rows(40);
  exec.mutable_size()->set_cols(100);
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-i", "-t", "-e", "TERM=xterm",
                  "-e", "FCVM_SESSION=ab12-7", "fcvm-workload", "sh"}));
}

TEST(ExecCommandTest, TtyWithStdinAddsInteractiveOnce) {
  channel::Exec exec = MakeExec({"sh"});
  exec.set_tty(true);
  exec.set_stdin(true);
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-i", "-t", "-e", "TERM=xterm",
                  "-e", "FCVM_SESSION=ab12-7", "fcvm-workload", "sh"}));
}

TEST(ExecCommandTest, EachEnvEntryIsOneFlagInOrder) {
  channel::Exec exec = MakeExec({"env"});
  exec.add_env("A=1");
  exec.add_env("EMPTY=");
  exec.add_env("EQ=a=b");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(
      command->argv,
      (Argv{"/usr/bin/podman", "exec", "-e", "A=1", "-e", "EMPTY=", "-e",
            "EQ=a=b", "-e", "FCVM_SESSION=ab12-7", "fcvm-workload", "env"}));
  // The entries go to the container, not to podman's own environment.
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=ab12-7"}));
}

TEST(ExecCommandTest, WorkingDirAndUser) {
  channel::Exec exec = MakeExec({"pwd"});
  exec.set_working_dir("/srv/app");
  exec.set_user("1000:1000");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "exec", "-e", "FCVM_SESSION=ab12-7", "-w",
                  "/srv/app", "-u", "1000:1000", "fcvm-workload", "pwd"}));
  // In the container: podman's own directory does not matter.
  EXPECT_EQ(command->working_dir, "");
}

TEST(ExecCommandTest, EveryFieldTogether) {
  channel::Exec exec = MakeExec({"sh", "-c", "echo $A"});
  exec.add_env("A=1");
  exec.set_working_dir("/tmp");
  exec.set_user("app");
  exec.set_stdin(true);
  exec.set_tty(true);
  exec.set_timeout_ms(500);  // The agent's business, not podman's.
  absl::StatusOr<SessionCommand> command =
      ExecCommand(exec, "podman", "web", "s-1");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"podman", "exec", "-i", "-t", "-e", "TERM=xterm", "-e", "A=1",
                  "-e", "FCVM_SESSION=s-1", "-w", "/tmp", "-u", "app", "web",
                  "sh", "-c", "echo $A"}));
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=s-1"}));
}

TEST(ExecCommandTest, InVmRunsTheCommandItself) {
  channel::Exec exec = MakeExec({"ip", "addr"});
  exec.set_in_vm(true);
  exec.add_env("A=1");
  exec.set_working_dir("/root");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv, (Argv{"ip", "addr"}));
  EXPECT_EQ(command->env, (Argv{"A=1", "FCVM_SESSION=ab12-7"}));
  EXPECT_EQ(command->working_dir, "/root");
}

TEST(ExecCommandTest, InVmAsUserGoesThroughRunuser) {
  channel::Exec exec = MakeExec({"id", "-u"});
  exec.set_in_vm(true);
  exec.set_user("alice");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv, (Argv{"runuser", "-u", "alice", "--", "id", "-u"}));
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=ab12-7"}));
}

TEST(ExecCommandTest, InVmWithTtySetsTerm) {
  channel::Exec exec = MakeExec({"sh"});
  exec.set_in_vm(true);
  exec.set_tty(true);
  exec.add_env("LANG=C");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv, (Argv{"sh"}));
  EXPECT_EQ(command->env,
            (Argv{"LANG=C", "FCVM_SESSION=ab12-7", "TERM=xterm"}));
}

TEST(ExecCommandTest, NoArgvIsRefused) {
  absl::StatusOr<SessionCommand> command = Exec(channel::Exec());
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(), "exec: no command");
}

TEST(ExecCommandTest, EmptyProgramIsRefused) {
  absl::StatusOr<SessionCommand> command = Exec(MakeExec({"", "x"}));
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(), "exec: no command");
}

TEST(ExecCommandTest, EnvWithoutEqualsIsRefused) {
  channel::Exec exec = MakeExec({"true"});
  exec.add_env("A=1");
  exec.add_env("NOVALUE");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "exec: environment entry 'NOVALUE' is not NAME=value");
}

TEST(ExecCommandTest, EnvWithoutNameIsRefused) {
  channel::Exec exec = MakeExec({"true"});
  exec.add_env("=value");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "exec: environment entry '=value' is not NAME=value");
}

TEST(ExecCommandTest, RelativeWorkingDirIsRefused) {
  channel::Exec exec = MakeExec({"true"});
  exec.set_working_dir("srv/app");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "exec: working directory 'srv/app' is not absolute");
}

TEST(ExecCommandTest, InVmChecksTheSameThings) {
  channel::Exec exec = MakeExec({"true"});
  exec.set_in_vm(true);
  exec.set_working_dir("tmp");
  absl::StatusOr<SessionCommand> command = Exec(exec);
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "exec: working directory 'tmp' is not absolute");
}

TEST(CopyCommandTest, CopyOutStreamsTheContainerPath) {
  channel::CopyOut copy;
  copy.set_path("/etc/hosts");
  absl::StatusOr<SessionCommand> command =
      CopyOutCommand(copy, "/usr/bin/podman", "fcvm-workload", "ab12-3");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv,
            (Argv{"/usr/bin/podman", "cp", "fcvm-workload:/etc/hosts", "-"}));
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=ab12-3"}));
  EXPECT_EQ(command->working_dir, "");
}

TEST(CopyCommandTest, CopyInUnpacksAtTheContainerPath) {
  channel::CopyIn copy;
  copy.set_path("/srv/data dir");
  absl::StatusOr<SessionCommand> command =
      CopyInCommand(copy, "podman", "web", "ab12-4");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->argv, (Argv{"podman", "cp", "-", "web:/srv/data dir"}));
  EXPECT_EQ(command->env, (Argv{"FCVM_SESSION=ab12-4"}));
}

TEST(CopyCommandTest, RelativePathsAreRefused) {
  channel::CopyOut out;
  out.set_path("etc/hosts");
  absl::StatusOr<SessionCommand> command =
      CopyOutCommand(out, "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "copy from 'etc/hosts': an absolute path in the container");

  channel::CopyIn in;
  in.set_path("data");
  command = CopyInCommand(in, "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "copy to 'data': an absolute path in the container");
}

TEST(CopyCommandTest, EmptyPathsAreRefused) {
  absl::StatusOr<SessionCommand> command =
      CopyOutCommand(channel::CopyOut(), "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "copy from '': an absolute path in the container");

  command = CopyInCommand(channel::CopyIn(), "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(),
            "copy to '': an absolute path in the container");
}

TEST(CopyCommandTest, NulBytesAreRefused) {
  channel::CopyOut out;
  out.set_path(std::string("/etc\0/passwd", 12));
  absl::StatusOr<SessionCommand> command =
      CopyOutCommand(out, "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(), "copy from: a NUL byte");

  channel::CopyIn in;
  in.set_path(std::string("/tmp\0x", 6));
  command = CopyInCommand(in, "podman", "web", "s");
  EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(command.status().message(), "copy to: a NUL byte");
}

class SessionProcessesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/proc", ++counter);
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0) << root_;
  }

  // A fake /proc/<name> with `environ` (none if nullptr).
  void Process(const std::string& name, const char* environ, size_t size) {
    const std::string dir = absl::StrCat(root_, "/", name);
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
    if (environ == nullptr) return;
    FILE* file = std::fopen((dir + "/environ").c_str(), "w");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(environ, 1, size, file), size);
    ASSERT_EQ(std::fclose(file), 0);
  }

  std::string root_;
};

TEST_F(SessionProcessesTest, MatchesWholeEntriesOnly) {
  // sizeof - 1: the literal's own NUL is not part of the file.
  constexpr char kMiddle[] = "A=1\0FCVM_SESSION=x\0B=2\0";
  constexpr char kLastNoNul[] = "PATH=/bin\0FCVM_SESSION=x";
  constexpr char kLonger[] = "FCVM_SESSION=xx\0";
  constexpr char kOther[] = "FCVM_SESSION=y\0";
  constexpr char kInValue[] = "NOTE=FCVM_SESSION=x\0";
  constexpr char kPrefixed[] = "MY_FCVM_SESSION=x\0";
  Process("100", kMiddle, sizeof(kMiddle) - 1);
  Process("101", kLastNoNul, sizeof(kLastNoNul) - 1);
  Process("102", kLonger, sizeof(kLonger) - 1);
  Process("103", kOther, sizeof(kOther) - 1);
  Process("104", kInValue, sizeof(kInValue) - 1);
  Process("105", kPrefixed, sizeof(kPrefixed) - 1);
  Process("106", "", 0);                          // A kernel thread.
  Process("107", nullptr, 0);                     // Gone while we looked.
  Process("self", kMiddle, sizeof(kMiddle) - 1);  // Not a pid.
  Process("0", kMiddle, sizeof(kMiddle) - 1);
  EXPECT_THAT(SessionProcesses(root_, "x"), UnorderedElementsAre(100, 101));
  EXPECT_THAT(SessionProcesses(root_, "y"), ElementsAre(103));
  EXPECT_THAT(SessionProcesses(root_, "z"), IsEmpty());
}

TEST_F(SessionProcessesTest, NoProcRootFindsNothing) {
  EXPECT_THAT(SessionProcesses(root_ + "/missing", "x"), IsEmpty());
}

absl::StatusOr<Subprocess> StartSleep(const std::string& session) {
  SubprocessOptions options;
  options.argv = {"sleep", "30"};
  options.env = std::vector<std::string>{
      "PATH=/usr/bin:/bin", absl::StrCat(kSessionEnv, "=", session)};
  return Subprocess::Start(std::move(options));
}

// SessionProcesses once it finds `want` (in any order), or after 5 s. A
// child shows its new environment a moment after posix_spawn returns: the
// kernel sets it up after the parent is let go.
std::vector<pid_t> FindWhenThere(const std::string& session_id,
                                 std::vector<pid_t> want) {
  std::sort(want.begin(), want.end());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  for (;;) {
    std::vector<pid_t> pids = SessionProcesses("/proc", session_id);
    std::sort(pids.begin(), pids.end());
    if (pids == want || absl::Now() > deadline) return pids;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

TEST(SessionProcessesRealTest, FindsChildrenByTheirMarker) {
  // A name no other process on the machine carries.
  const std::string id = absl::StrCat("test-", getpid());
  absl::StatusOr<Subprocess> first = StartSleep(id);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Subprocess> second = StartSleep(id);
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<Subprocess> other = StartSleep(id + "-other");
  ASSERT_TRUE(other.ok()) << other.status();

  EXPECT_THAT(FindWhenThere(id, {first->pid(), second->pid()}),
              UnorderedElementsAre(first->pid(), second->pid()));
  EXPECT_THAT(FindWhenThere(id + "-other", {other->pid()}),
              ElementsAre(other->pid()));

  absl::StatusOr<ExitStatus> killed = first->Kill();
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_THAT(SessionProcesses("/proc", id), ElementsAre(second->pid()));
}

}  // namespace
}  // namespace fcvm::agent
