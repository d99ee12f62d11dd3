// `fcvm exec` and `fcvm cp` as a user runs them: the real binary, its
// flags, messages and exit codes, against the fake hub in the directory of
// a VM of a real state store (the test holds its lease, as a supervisor
// would). The guest's side is the fake's; tests/runner/exec_test.cc runs
// the same commands against a real VM.
//   cli_test <fcvm>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "channel/frame.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/exec/copy.h"
#include "runner/exec/testing/fake_hub.h"
#include "runner/state/lease.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::exec {
namespace {

using channel::Frame;
using ::testing::ElementsAre;
using testing::FakeHub;
using ::testing::HasSubstr;

std::string g_fcvm;

struct Result {
  int code = -1;
  std::string out, err;
};

channel::Exit MakeExit(int code, bool timed_out = false,
                       const std::string& message = "") {
  channel::Exit exit;
  exit.set_code(code);
  exit.set_timed_out(timed_out);
  exit.set_message(message);
  return exit;
}

// Serves one exec: checks its Open with `check`, then `out` and `err`
// and `exit`.
FakeHub::Serve OneExec(std::function<void(const channel::Exec&)> check,
                       channel::Exit exit, std::string out = "",
                       std::string err = "") {
  return [=](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const uint64_t id = open->open().session();
    check(open->open().exec());
    hub.Started(id, "s-1");
    if (!out.empty()) hub.SendData(id, channel::STDOUT, out);
    if (!err.empty()) hub.SendData(id, channel::STDERR, err);
    hub.Finish(id, exit);
    while (hub.Next().has_value()) {
    }
  };
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fcvm-exec-cli-test.XXXXXX";  // sun_path is short.
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    StateStore store(root_);
    VmState state;
    state.set_name("web");
    state.set_phase(VmState::RUNNING);
    absl::StatusOr<Lease> lease = store.Create(state);
    ASSERT_TRUE(lease.ok()) << lease.status();
    lease_.emplace(*std::move(lease));
    dir_ = state.dir();
    host_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cli_test");
    ASSERT_TRUE(RemoveTree(host_).ok());
    ASSERT_EQ(mkdir(host_.c_str(), 0755), 0);
  }
  void TearDown() override {
    lease_.reset();
    EXPECT_TRUE(RemoveTree(root_).ok());
  }

  Result Fcvm(std::vector<std::string> args, const std::string& input = "") {
    SubprocessOptions options;
    options.argv = {g_fcvm, "--state_dir", root_};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.stdin_mode = StdioMode::kPipe;
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    Result result;
    absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(options));
    if (!process.ok()) {
      result.err = process.status().ToString();
      return result;
    }
    absl::StatusOr<Subprocess::Output> output =
        process->Communicate(input, absl::Seconds(60));
    if (!output.ok()) {
      result.err = output.status().ToString();
      return result;
    }
    result.code =
        output->exit.signaled ? 128 + output->exit.signal : output->exit.code;
    result.out = output->stdout_data;
    result.err = output->stderr_data;
    return result;
  }

  std::unique_ptr<FakeHub> Hub(FakeHub::Serve serve) {
    absl::StatusOr<std::unique_ptr<FakeHub>> hub =
        FakeHub::Start(dir_, std::move(serve));
    EXPECT_TRUE(hub.ok()) << hub.status();
    return hub.ok() ? *std::move(hub) : nullptr;
  }

  std::string root_, dir_, host_;
  std::optional<Lease> lease_;
};

TEST_F(CliTest, ExecPassesEveryFlagAndTheExitCode) {
  auto hub = Hub(OneExec(
      [](const channel::Exec& exec) {
        EXPECT_THAT(exec.argv(), ElementsAre("sh", "-c", "exit 3", "--x"));
        EXPECT_THAT(exec.env(), ElementsAre("A=1", "B=two words"));
        EXPECT_EQ(exec.working_dir(), "/srv");
        EXPECT_EQ(exec.user(), "1000:1000");
        EXPECT_FALSE(exec.stdin());
        EXPECT_FALSE(exec.tty());
        EXPECT_TRUE(exec.in_vm());
        EXPECT_FALSE(exec.detach());
        EXPECT_EQ(exec.timeout_ms(), 1500u);
      },
      MakeExit(3), "to stdout\n", "to stderr\n"));
  Result r = Fcvm({"exec", "-e", "A=1", "--env", "B=two words", "-w", "/srv",
                   "-u", "1000:1000", "--vm", "--timeout", "1.5s", "web", "--",
                   "sh", "-c", "exit 3", "--x"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "to stdout\n");
  EXPECT_EQ(r.err, "to stderr\n");
}

TEST_F(CliTest, ExecItWithoutATerminalStillAsksForOneAndForwardsStdin) {
  std::string received;
  auto hub = Hub([&received](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    EXPECT_TRUE(open->open().exec().tty());
    EXPECT_TRUE(open->open().exec().stdin());
    EXPECT_THAT(open->open().exec().argv(), ElementsAre("cat"));
    const uint64_t id = open->open().session();
    hub.Started(id, "s-1");
    for (;;) {
      std::optional<Frame> frame = hub.Next();
      ASSERT_TRUE(frame.has_value() && frame->has_data());
      received += frame->data().data();
      if (!frame->data().data().empty()) {
        hub.SendData(id, channel::STDOUT, frame->data().data());
        hub.Credit(id, frame->data().data().size());
      }
      if (frame->data().eof()) break;
    }
    hub.Finish(id, MakeExit(0));
    while (hub.Next().has_value()) {
    }
  });
  Result r = Fcvm({"exec", "-it", "web", "cat"}, "typed\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "typed\n");
  EXPECT_EQ(r.err, "");
  hub.reset();
  EXPECT_EQ(received, "typed\n");
}

TEST_F(CliTest, ExecTimedOutSaysSoAndExits124) {
  {
    auto hub = Hub(OneExec([](const channel::Exec&) {},
                           MakeExit(137, true,
                                    "timed out after 2s: killed 3 processes "
                                    "of the session")));
    Result r = Fcvm({"exec", "--timeout", "2s", "web", "sleep", "9"});
    EXPECT_EQ(r.code, 124);
    EXPECT_EQ(r.err,
              "fcvm exec: web: timed out after 2s: killed 3 processes of the "
              "session\n");
  }
  auto hub = Hub(OneExec([](const channel::Exec&) {}, MakeExit(137, true)));
  Result r = Fcvm({"exec", "--timeout", "500ms", "web", "sleep", "9"});
  EXPECT_EQ(r.code, 124);
  EXPECT_EQ(r.err,
            "fcvm exec: web: timed out after 500ms; killed the session's "
            "processes in the guest\n");
}

TEST_F(CliTest, ExecDetachedPrintsTheId) {
  auto hub = Hub([](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    EXPECT_TRUE(open->open().exec().detach());
    const uint64_t id = open->open().session();
    hub.Started(id, "a1b2-3");
    Frame exit;
    exit.mutable_exit()->set_session(id);
    exit.mutable_exit()->set_message("detached: a1b2-3");
    hub.Send(exit);
    while (hub.Next().has_value()) {
    }
  });
  Result r = Fcvm({"exec", "-d", "web", "--", "sleep", "100"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "a1b2-3\n");
}

TEST_F(CliTest, ExecsOwnFailuresAre125WithOneLine) {
  Result no_vm = Fcvm({"exec", "nosuch", "--", "true"});
  EXPECT_EQ(no_vm.code, 125);
  EXPECT_EQ(no_vm.err, "fcvm: no VM named 'nosuch'\n");
  Result no_channel = Fcvm({"exec", "web", "--", "true"});
  EXPECT_EQ(no_channel.code, 125);
  EXPECT_EQ(no_channel.err,
            "fcvm: VM 'web' has no control channel (it is not running, or was "
            "started by an fcvm without one)\n");
  Result no_command = Fcvm({"exec", "web"});
  EXPECT_EQ(no_command.code, 125);
  EXPECT_EQ(no_command.err,
            "fcvm: exec web: no command (exec [FLAGS] NAME [--] CMD "
            "[ARGS...])\n");
  Result bad_timeout = Fcvm({"exec", "--timeout", "soon", "web", "true"});
  EXPECT_EQ(bad_timeout.code, 125);
  EXPECT_THAT(bad_timeout.err, HasSubstr("--timeout 'soon'"));

  lease_.reset();  // The supervisor is gone.
  Result stopped = Fcvm({"exec", "web", "--", "true"});
  EXPECT_EQ(stopped.code, 125);
  EXPECT_EQ(stopped.err, "fcvm: VM 'web' is not running\n");
}

TEST_F(CliTest, ExecOfALostSessionIs125) {
  auto hub = Hub([](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    hub.Started(open->open().session(), "s-1");
    // What the hub says when the agent's channel restarts.
    hub.Error(open->open().session(), channel::Error::RESET,
              "VM 'web': the agent's channel restarted; the session is lost");
    while (hub.Next().has_value()) {
    }
  });
  Result r = Fcvm({"exec", "web", "--", "sleep", "600"});
  EXPECT_EQ(r.code, 125);
  EXPECT_EQ(r.err,
            "fcvm: VM 'web': the agent's channel restarted; the session is "
            "lost\n");
}

TEST_F(CliTest, CpBothWaysAndTheAgentsErrors) {
  const std::string src = host_ + "/app";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomically(src + "/config", "port 80\n").ok());
  {
    // VM -> host, to a new name.
    auto hub = Hub([&src](FakeHub::Connection& hub) {
      std::optional<Frame> open = hub.Next();
      ASSERT_TRUE(open.has_value() && open->has_open());
      EXPECT_EQ(open->open().copy_out().path(), "/etc/app");
      const uint64_t id = open->open().session();
      class Sink : public ByteSink {
       public:
        Sink(FakeHub::Connection& h, uint64_t i) : hub(h), id(i) {}
        absl::Status Write(absl::string_view b) override {
          hub.SendData(id, channel::STDOUT, b);
          return absl::OkStatus();
        }
        FakeHub::Connection& hub;
        uint64_t id;
      } sink(hub, id);
      EXPECT_TRUE(WriteTar(src, "app", sink).ok());
      hub.Finish(id, MakeExit(0));
      while (hub.Next().has_value()) {
      }
    });
    Result r = Fcvm({"cp", "web:etc/app", host_ + "/copy"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(ReadFile(host_ + "/copy/config").value_or(""), "port 80\n");
  }
  {
    // Host -> VM, the agent failing.
    auto hub = Hub([](FakeHub::Connection& hub) {
      std::optional<Frame> stat = hub.Next();
      ASSERT_TRUE(stat.has_value() && stat->has_open());
      EXPECT_EQ(stat->open().stat().path(), "/data");
      Frame stated;
      stated.mutable_stated()->set_session(stat->open().session());
      stated.mutable_stated()->set_exists(true);
      stated.mutable_stated()->set_directory(true);
      hub.Send(stated);
      std::optional<Frame> open = hub.Next();
      ASSERT_TRUE(open.has_value() && open->has_open());
      EXPECT_EQ(open->open().copy_in().path(), "/data");
      const uint64_t id = open->open().session();
      hub.SendData(id, channel::STDERR,
                   "Error: copying: write /data/app/config: no space left on "
                   "device\n");
      hub.Finish(id, MakeExit(125));
      while (hub.Next().has_value()) {
      }
    });
    Result r = Fcvm({"cp", src, "web:/data"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err,
              "fcvm cp: web:/data: Error: copying: write /data/app/config: no "
              "space left on device\n");
  }
  Result no_channel = Fcvm({"cp", src, "web:/data"});
  EXPECT_EQ(no_channel.code, 125);
  EXPECT_EQ(no_channel.err,
            "fcvm cp: VM 'web' has no control channel (it is not running, or "
            "was started by an fcvm without one)\n");
  Result both = Fcvm({"cp", "web:/a", "web:/b"});
  EXPECT_EQ(both.code, 2);
  EXPECT_THAT(both.err, HasSubstr("give NAME:PATH on exactly one side"));
  Result neither = Fcvm({"cp", src, host_ + "/x"});
  EXPECT_EQ(neither.code, 2);
  EXPECT_THAT(neither.err, HasSubstr("one side must be NAME:PATH"));
}

}  // namespace
}  // namespace fcvm::runner::exec

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: cli_test <fcvm>\n");
    return 2;
  }
  fcvm::runner::exec::g_fcvm = argv[1];
  return RUN_ALL_TESTS();
}
