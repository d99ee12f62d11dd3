// The supervisor against a stand-in VMM: a shell script that writes what a
// guest writes on its console (the agent's frames) and answers "@fcvm
// stop" on its stdin as the agent does; pause and resume are SIGSTOP and
// SIGCONT. Each case runs the supervisor in a child process of its own, as
// `run` does (it blocks signals and owns the lease).
#include "runner/vm/supervisor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/report.h"
#include "base/file.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/state/process.h"
#include "runner/vm/control.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

std::string Frame(agent::AgentEvent::Kind kind, int exit_code = 0) {
  agent::AgentEvent event;
  event.set_kind(kind);
  event.set_exit_code(exit_code);
  event.set_uptime_ms(1234);
  if (kind == agent::AgentEvent::EXITED) event.set_message("exited with 3");
  return agent::FrameEvent(event);
}

// A VMM whose "guest" is `script` (sh), with the frames in $READY and
// $EXITED.
class ScriptVmm : public Vmm {
 public:
  explicit ScriptVmm(std::string script, bool start_fails = false)
      : script_(std::move(script)), start_fails_(start_fails) {}
  std::string Describe() const override { return "script"; }
  VmmCapabilities Capabilities() const override {
    VmmCapabilities c;
    c.pause = true;
    return c;
  }
  std::string GuestBlockDevice(int index) const override {
    return VirtioBlockDevice(index);
  }
  [[nodiscard]] absl::StatusOr<Subprocess> Start(
      const VmSpec& spec, const std::string& dir) override {
    if (start_fails_) {
      // What the network looked like when the VMM was to start.
      (void)spec;
      (void)WriteFileAtomically(dir + "/tap-at-start",
                                net::LinkExists("fc-00000000") ? "yes" : "no");
      return absl::UnavailableError("the VMM said no");
    }
    SubprocessOptions options;
    options.argv = {"sh", "-c", script_};
    options.env = std::vector<std::string>{
        absl::StrCat("READY=", "[    0.1] Linux booting\n",
                     Frame(agent::AgentEvent::AGENT_STARTED),
                     Frame(agent::AgentEvent::READY)),
        absl::StrCat("EXITED=", Frame(agent::AgentEvent::EXITED, 3)),
        absl::StrCat("DIR=", dir), "PATH=/usr/bin:/bin"};
    options.stdin_mode = options.stdout_mode = options.stderr_mode =
        StdioMode::kPipe;
    ASSIGN_OR_RETURN(Subprocess process, Subprocess::Start(std::move(options)));
    pid_ = process.pid();
    return process;
  }
  [[nodiscard]] absl::StatusOr<Subprocess> Restore(
      const VmSpec&, const std::string&, const RestoreSource&) override {
    return absl::UnimplementedError("no");
  }
  [[nodiscard]] absl::Status Pause(const std::string&) override {
    return kill(pid_, SIGSTOP) == 0 ? absl::OkStatus()
                                    : absl::InternalError("SIGSTOP");
  }
  [[nodiscard]] absl::Status Resume(const std::string&) override {
    return kill(pid_, SIGCONT) == 0 ? absl::OkStatus()
                                    : absl::InternalError("SIGCONT");
  }
  [[nodiscard]] absl::StatusOr<SnapshotReport> Snapshot(
      const std::string&, const std::string&) override {
    return absl::UnimplementedError("no");
  }
  void ForceStop(Subprocess& vmm, const std::string& dir) override {
    (void)WriteFileAtomically(dir + "/forced", "yes");
    (void)vmm.Kill();
  }

 private:
  std::string script_;
  bool start_fails_;
  pid_t pid_ = 0;
};

// The agent: frames, then waits for "@fcvm stop", then says it exited.
constexpr char kAgent[] =
    "printf '%s' \"$READY\"; while read line; do "
    "[ \"$line\" = '@fcvm stop' ] && { printf '%s' \"$EXITED\"; exit 0; }; "
    "done";

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: the control socket's path must fit in sun_path.
    char dir[] = "/tmp/fcvm-sup.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    store_.emplace(root_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  // Creates VM "vm" and supervises it in a child; returns once the child
  // reported (ready or failed), with what it said in *said.
  pid_t Start(const std::string& script, std::string* said,
              bool start_fails = false, VmState state = VmState(),
              absl::Duration slack = absl::Seconds(30), bool own_netns = false,
              int free_fds = -1) {
    state.set_name("vm");
    state.set_id("00000000000000aa");
    state.set_phase(VmState::CREATING);
    if (state.network().mode().empty())
      state.mutable_network()->set_mode("none");
    state.mutable_spec()->mutable_plan()->set_stop_timeout_seconds(1);
    absl::StatusOr<Lease> lease = store_->Create(state);
    EXPECT_TRUE(lease.ok()) << lease.status();
    int report[2];
    EXPECT_EQ(pipe(report), 0);
    const pid_t child = fork();
    if (child == 0) {
      close(report[0]);
      if (own_netns && unshare(CLONE_NEWNET) != 0) _exit(99);
      if (free_fds >= 0) {
        // Every descriptor below the highest open one taken, and a limit
        // that leaves exactly `free_fds` more.
        int highest = 0;
        for (const auto& fd :
             std::filesystem::directory_iterator("/proc/self/fd")) {
          highest = std::max(highest, std::atoi(fd.path().filename().c_str()));
        }
        for (int fd = 0; fd < highest; ++fd) {
          if (fcntl(fd, F_GETFD) < 0) (void)!open("/dev/null", O_RDONLY);
        }
        rlimit limit = {static_cast<rlim_t>(highest + 1 + free_fds),
                        static_cast<rlim_t>(highest + 1 + free_fds)};
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(97);
      }
      ScriptVmm vmm(script, start_fails);
      SuperviseOptions options;
      options.power_off_slack = slack;
      options.on_ready = [&](const VmState&) {
        (void)!write(report[1], "ready", 5);
        close(report[1]);
      };
      options.on_failed = [&](const std::string& error) {
        (void)!write(report[1], error.data(), error.size());
        close(report[1]);
      };
      const int code =
          Supervise(*store_, state, std::move(*lease), vmm, options);
      // In a namespace of our own, whatever the VM's network left is here.
      if (own_netns && (net::LinkExists(state.network().tap()) ||
                        net::ListTable(state.network().nft_table()).ok())) {
        _exit(98);
      }
      _exit(code);
    }
    { Lease drop = std::move(*lease); }
    close(report[1]);
    said->clear();
    char buffer[4096];
    for (ssize_t n; (n = read(report[0], buffer, sizeof(buffer))) > 0;) {
      said->append(buffer, n);
    }
    close(report[0]);
    return child;
  }
  int WaitCode(pid_t child) {
    int status = 0;
    EXPECT_EQ(waitpid(child, &status, 0), child);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string root_;
  std::optional<StateStore> store_;
};

TEST_F(SupervisorTest, ReadyThenAGracefulStopOnSigterm) {
  std::string said;
  const pid_t child = Start(kAgent, &said);
  ASSERT_EQ(said, "ready");
  absl::StatusOr<VmState> running = store_->Read("vm");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->phase(), VmState::RUNNING);
  EXPECT_EQ(running->supervisor_pid(), child);
  EXPECT_GT(running->vmm_pid(), 0);
  EXPECT_TRUE(Lease::Held(running->dir()));
  ASSERT_EQ(kill(child, SIGTERM), 0);
  EXPECT_EQ(WaitCode(child), 3);  // The container's exit code.
  absl::StatusOr<VmState> ended = store_->Read("vm");
  EXPECT_EQ(ended->phase(), VmState::EXITED);
  EXPECT_EQ(ended->exit_code(), 3);
  EXPECT_EQ(ended->supervisor_pid(), 0);
  EXPECT_EQ(ended->phases(ended->phases_size() - 1).phase(), "vm ended");
  EXPECT_FALSE(Lease::Held(ended->dir()));
  EXPECT_NE(access((ended->dir() + "/control.sock").c_str(), F_OK), 0);
  EXPECT_THAT(*ReadFile(ended->dir() + "/console.log"),
              HasSubstr("Linux booting"));
}

// Pipes held open by a process the VMM left (here a sleep in the
// background) used to keep the supervisor polling a readable pidfd at 100%
// CPU until they closed.
TEST_F(SupervisorTest, PipesOutlivingTheVmmNeitherSpinNorHang) {
  std::string said;
  const pid_t child = Start(
      "printf '%s' \"$READY\"; sleep 600 & echo $! > \"$DIR/sleeper\"; exit 7",
      &said);
  ASSERT_EQ(said, "ready");
  EXPECT_EQ(WaitCode(child), 125);  // No EXITED frame: the VM failed.
  rusage usage;
  ASSERT_EQ(getrusage(RUSAGE_CHILDREN, &usage), 0);
  const double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                     usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  EXPECT_LT(cpu, 1.0) << "the supervisor spun while the pipes stayed open";
  absl::StatusOr<VmState> ended = store_->Read("vm");
  EXPECT_EQ(ended->phase(), VmState::FAILED);
  EXPECT_THAT(ended->error(), HasSubstr("exited with status 7"));
  if (absl::StatusOr<std::string> sleeper = ReadFile(ended->dir() + "/sleeper");
      sleeper.ok()) {
    kill(std::atoi(sleeper->c_str()), SIGKILL);
  }
}

TEST_F(SupervisorTest, AGuestThatDoesNotPowerOffIsEndedTheHardWay) {
  std::string said;
  const pid_t child =
      Start("printf '%s' \"$READY\"; trap '' TERM; while read line; do :; done",
            &said, false, VmState(), absl::Milliseconds(100));
  ASSERT_EQ(said, "ready");
  ASSERT_EQ(kill(child, SIGTERM), 0);
  EXPECT_EQ(WaitCode(child), 125);
  EXPECT_EQ(*ReadFile(store_->VmDir("vm") + "/forced"), "yes");
}

TEST_F(SupervisorTest, ASecondStopRequestEndsItAtOnce) {
  std::string said;
  const pid_t child =
      Start("printf '%s' \"$READY\"; while read line; do :; done", &said);
  ASSERT_EQ(said, "ready");
  ASSERT_EQ(kill(child, SIGTERM), 0);
  // The first request is on the console before the second comes.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (store_->Read("vm")->phase() != VmState::STOPPING &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(kill(child, SIGINT), 0);
  EXPECT_EQ(WaitCode(child), 125);
  EXPECT_EQ(*ReadFile(store_->VmDir("vm") + "/forced"), "yes");
}

TEST_F(SupervisorTest, PauseAndResumeGoThroughTheOwner) {
  std::string said;
  const pid_t child = Start(kAgent, &said);
  ASSERT_EQ(said, "ready");
  const std::string dir = store_->VmDir("vm");
  ControlRequest pause;
  pause.mutable_pause();
  absl::StatusOr<ControlReply> paused = SendControl(dir, pause);
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_TRUE(paused->ok()) << paused->error();
  EXPECT_EQ(paused->phase(), "PAUSED");
  absl::StatusOr<VmState> state = store_->Read("vm");
  EXPECT_EQ(state->phase(), VmState::PAUSED);
  // Really stopped: the kernel says so.
  EXPECT_THAT(*ReadFile(absl::StrCat("/proc/", state->vmm_pid(), "/stat")),
              HasSubstr(") T "));
  ControlRequest resume;
  resume.mutable_resume();
  absl::StatusOr<ControlReply> resumed = SendControl(dir, resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->phase(), "RUNNING");
  EXPECT_EQ(store_->Read("vm")->phase(), VmState::RUNNING);
  // A request that is not ours is refused by name.
  absl::StatusOr<ControlRequest> bad = ParseControlRequest(R"({"reboot":{}})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  // Stopping a paused VM resumes it first: the agent must hear the stop.
  ASSERT_TRUE(SendControl(dir, pause).ok());
  ASSERT_EQ(kill(child, SIGTERM), 0);
  EXPECT_EQ(WaitCode(child), 3);
}

// --timeout: the supervisor stops the VM at its expiry on its own (no
// client needed), and a SetTimeout moves the expiry first.
TEST_F(SupervisorTest, TheTimeoutStopsTheVmAndSetTimeoutMovesIt) {
  VmState state;
  state.set_expires_unix_ms(absl::ToUnixMillis(absl::Now()) + 60'000);
  std::string said;
  const pid_t child = Start(kAgent, &said, false, state);
  ASSERT_EQ(said, "ready");
  const std::string dir = store_->VmDir("vm");
  ControlRequest negative;
  negative.mutable_set_timeout()->set_expires_unix_ms(-1);
  absl::StatusOr<ControlReply> refused = SendControl(dir, negative);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->ok());
  EXPECT_THAT(refused->error(), HasSubstr("negative"));
  ControlRequest sooner;
  const int64_t expires = absl::ToUnixMillis(absl::Now()) + 500;
  sooner.mutable_set_timeout()->set_expires_unix_ms(expires);
  absl::StatusOr<ControlReply> moved = SendControl(dir, sooner);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_TRUE(moved->ok()) << moved->error();
  EXPECT_EQ(store_->Read("vm")->expires_unix_ms(), expires);
  const absl::Time before = absl::Now();
  EXPECT_EQ(WaitCode(child), 3);  // A graceful stop: the container's code.
  EXPECT_LT(absl::Now() - before, absl::Seconds(30));
  absl::StatusOr<VmState> ended = store_->Read("vm");
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->phase(), VmState::EXITED);
  EXPECT_GE(ended->ended_unix_ms(), expires);
}

TEST_F(SupervisorTest, RemoveOnExitLeavesNothing) {
  VmState state;
  state.set_remove_on_exit(true);
  std::string said;
  const pid_t child = Start(kAgent, &said, false, state);
  ASSERT_EQ(said, "ready");
  const std::string dir = store_->VmDir("vm");
  ASSERT_EQ(access(dir.c_str(), F_OK), 0);
  ASSERT_EQ(kill(child, SIGTERM), 0);
  EXPECT_EQ(WaitCode(child), 3);
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
  EXPECT_EQ(store_->Read("vm").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SupervisorTest, AVmmThatFailsToStartIsReportedAndRecorded) {
  std::string said;
  const pid_t child = Start(kAgent, &said, /*start_fails=*/true);
  EXPECT_EQ(said, "the VMM said no");
  EXPECT_EQ(WaitCode(child), 125);
  absl::StatusOr<VmState> ended = store_->Read("vm");
  EXPECT_EQ(ended->phase(), VmState::FAILED);
  EXPECT_EQ(ended->error(), "the VMM said no");
  EXPECT_FALSE(Lease::Held(ended->dir()));
}

// With no descriptor left for its signalfd (here: room for the three logs
// and no more), the supervisor used to go on deaf to Ctrl-C and `fcvm
// stop`. It refuses to start the VM instead, and says why.
TEST_F(SupervisorTest, NoSignalfdMeansNoVm) {
  std::string said;
  const pid_t child = Start(kAgent, &said, false, VmState(), absl::Seconds(30),
                            false, /*free_fds=*/3);
  EXPECT_EQ(said, "signalfd for SIGTERM/SIGINT/SIGHUP: Too many open files");
  EXPECT_EQ(WaitCode(child), 125);
}

// The TAP and table the supervisor made are gone when the VMM fails to
// start (they used to stay until `rm`). In a network namespace of the
// child's own: needs root.
TEST_F(SupervisorTest, ATapNetworkIsTornDownWhenTheVmmFailsToStart) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root: a network namespace, a TAP and nftables";
  }
  VmState state;
  NetworkState& net = *state.mutable_network();
  net.set_mode("tap");
  net.set_tap("fc-00000000");
  net.set_subnet("10.213.0.4/30");
  net.set_host_ip("10.213.0.5");
  net.set_guest_ip("10.213.0.6");
  net.set_nft_table("fcvm-00000000000000aa");
  std::string said;
  // The child checks its namespace after Supervise returns: 98 if the TAP
  // or the table is still there.
  const pid_t child = Start(kAgent, &said, true, state, absl::Seconds(30),
                            /*own_netns=*/true);
  EXPECT_EQ(said, "the VMM said no");
  EXPECT_EQ(WaitCode(child), 125) << "98: the TAP or table was left";
  EXPECT_EQ(*ReadFile(store_->VmDir("vm") + "/tap-at-start"), "yes");
  absl::StatusOr<VmState> ended = store_->Read("vm");
  EXPECT_EQ(ended->phase(), VmState::FAILED);
  // Teardown succeeded (it would have said "network teardown: ...").
  EXPECT_EQ(ended->error(), "the VMM said no");
}

}  // namespace
}  // namespace fcvm::runner
