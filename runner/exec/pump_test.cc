#include "runner/exec/pump.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "channel/frame.h"
#include "gtest/gtest.h"
#include "runner/exec/client.h"
#include "runner/exec/testing/fake_hub.h"

namespace fcvm::runner::exec {
namespace {

using channel::Frame;
using testing::FakeHub;

constexpr size_t kTenMiB = 10 << 20;

// Bytes that differ from any shifted copy of themselves (a misplaced
// chunk shows).
std::string Pattern(size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : bytes) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return bytes;
}

// Reads a pipe to its end on a thread of its own.
class Drain {
 public:
  explicit Drain(UniqueFd fd)
      : fd_(std::move(fd)), thread_([this] {
          absl::StatusOr<std::string> all = ReadAll(fd_.get(), "pipe");
          if (all.ok()) bytes_ = *std::move(all);
        }) {}
  std::string Wait() {
    thread_.join();
    return std::move(bytes_);
  }

 private:
  UniqueFd fd_;
  std::string bytes_;
  std::thread thread_;
};

channel::Exit MakeExit(int code) {
  channel::Exit exit;
  exit.set_code(code);
  return exit;
}

class PumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fcvm-exec-pump-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    unlink((dir_ + "/channel.sock").c_str());
    rmdir(dir_.c_str());
  }

  std::unique_ptr<HubClient> Connect() {
    absl::StatusOr<std::unique_ptr<HubClient>> client =
        HubClient::Connect(dir_, "web");
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Runs `exec` with stdin from `input` (if given), returning the outputs.
  struct Run {
    absl::StatusOr<ExecResult> result;
    std::string out, err;
  };
  Run RunWith(const channel::Exec& exec, const std::string* input = nullptr,
              int in_fd = -1) {
    std::unique_ptr<HubClient> client = Connect();
    if (client == nullptr) return {absl::InternalError("no client")};
    absl::StatusOr<Pipe> out = MakePipe(), err = MakePipe(), in = MakePipe();
    EXPECT_TRUE(out.ok() && err.ok() && in.ok());
    Drain out_drain(std::move(out->read)), err_drain(std::move(err->read));
    std::thread feeder;
    if (input != nullptr) {
      in_fd = in->read.get();
      feeder = std::thread([&in, input] {
        EXPECT_TRUE(WriteAll(in->write.get(), *input, "stdin").ok());
        in->write.reset();
      });
    }
    Run run{RunExec(*client, exec, in_fd, out->write.get(), err->write.get())};
    out->write.reset();
    err->write.reset();
    if (feeder.joinable()) {
      in->read.reset();  // A feeder not read to the end gets EPIPE.
      feeder.join();
    }
    run.out = out_drain.Wait();
    run.err = err_drain.Wait();
    return run;
  }

  std::string dir_;
};

TEST_F(PumpTest, TenMiBOnEachStreamArriveByteExactAndApart) {
  const std::string out = Pattern(kTenMiB, 1), err = Pattern(kTenMiB, 2);
  auto hub = FakeHub::Start(dir_, [&](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const uint64_t id = open->open().session();
    EXPECT_EQ(open->open().exec().argv_size(), 2);
    EXPECT_FALSE(open->open().exec().stdin());
    hub.Started(id, "s-1");
    // Interleaved, in pieces that are not frame-sized; each waits for the
    // client's credit, so a client that does not give it back stalls this
    // (and the fake's 20 s limit fails the test).
    size_t o = 0, e = 0;
    while (o < out.size() || e < err.size()) {
      const size_t on = std::min<size_t>(100000, out.size() - o);
      const size_t en = std::min<size_t>(77777, err.size() - e);
      if (on > 0)
        hub.SendData(id, channel::STDOUT, absl::string_view(out).substr(o, on));
      if (en > 0)
        hub.SendData(id, channel::STDERR, absl::string_view(err).substr(e, en));
      o += on;
      e += en;
    }
    hub.Finish(id, MakeExit(0));
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("sh");
  exec.add_argv("-c");
  Run run = RunWith(exec);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->exit.code(), 0);
  EXPECT_EQ(run.out.size(), kTenMiB);
  EXPECT_EQ(run.err.size(), kTenMiB);
  EXPECT_TRUE(run.out == out);
  EXPECT_TRUE(run.err == err);
}

TEST_F(PumpTest, TenMiBOfStdinAreEchoedWithinTheCredit) {
  const std::string input = Pattern(kTenMiB, 3);
  auto hub = FakeHub::Start(dir_, [&](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const uint64_t id = open->open().session();
    EXPECT_TRUE(open->open().exec().stdin());
    hub.Started(id, "s-1");
    // The agent's cat, slowed down: stdin is credited only once a whole
    // window is in, so the client must stop at exactly its credit (the
    // fake fails the test if it sends more) and wait.
    std::string held;
    for (bool eof = false; !eof;) {
      std::optional<Frame> frame = hub.Next();
      ASSERT_TRUE(frame.has_value());
      ASSERT_TRUE(frame->has_data()) << frame->DebugString();
      ASSERT_EQ(frame->data().stream(), channel::STDIN);
      held += frame->data().data();
      eof = frame->data().eof();
      if (held.size() == channel::kWindowBytes || eof) {
        hub.SendData(id, channel::STDOUT, held);
        hub.Credit(id, held.size());
        held.clear();
      }
    }
    hub.Finish(id, MakeExit(0));
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("cat");
  exec.set_stdin(true);
  Run run = RunWith(exec, &input);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->exit.code(), 0);
  EXPECT_EQ(run.out.size(), input.size());
  EXPECT_TRUE(run.out == input);
  EXPECT_EQ(run.err, "");
  hub->reset();
}

TEST_F(PumpTest, ExitIsReturnedAsTheAgentSentIt) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const uint64_t id = open->open().session();
    hub.Started(id, "s-1");
    hub.SendData(id, channel::STDERR, "sh: nope: not found\n");
    channel::Exit exit;
    exit.set_code(127);
    exit.set_message("not found");
    hub.Finish(id, exit);
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("nope");
  Run run = RunWith(exec);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->exit.code(), 127);
  EXPECT_EQ(run.result->exit.message(), "not found");
  EXPECT_EQ(run.result->id, "s-1");
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "sh: nope: not found\n");
}

TEST_F(PumpTest, DetachReturnsTheSessionsId) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    EXPECT_TRUE(open->open().exec().detach());
    const uint64_t id = open->open().session();
    hub.Started(id, "a1b2-7");
    channel::Exit exit;
    exit.set_session(id);
    exit.set_message("detached: a1b2-7");
    Frame frame;
    *frame.mutable_exit() = exit;
    hub.Send(frame);
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("sleep");
  exec.set_detach(true);
  Run run = RunWith(exec);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.result->exit.code(), 0);
  EXPECT_EQ(run.result->id, "a1b2-7");
}

TEST_F(PumpTest, TerminalSizeGoesInTheOpenAndResizesFollow) {
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(master);
  ASSERT_EQ(grantpt(master.get()), 0);
  ASSERT_EQ(unlockpt(master.get()), 0);
  UniqueFd slave(open(ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave);
  winsize size = {};
  size.ws_row = 33;
  size.ws_col = 101;
  // TIOCSWINSZ reads a struct winsize, which `size` is.
  ASSERT_EQ(ioctl(master.get(), TIOCSWINSZ, &size), 0);
  std::optional<Frame> resize;
  auto hub = FakeHub::Start(dir_, [&](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const channel::Exec& exec = open->open().exec();
    EXPECT_TRUE(exec.tty());
    EXPECT_EQ(exec.size().rows(), 33u);
    EXPECT_EQ(exec.size().cols(), 101u);
    const uint64_t id = open->open().session();
    hub.Started(id, "s-1");
    hub.SendData(id, channel::STDOUT, "$ ");
    winsize bigger = {};
    bigger.ws_row = 40;
    bigger.ws_col = 120;
    ASSERT_EQ(ioctl(master.get(), TIOCSWINSZ, &bigger), 0);
    // Not our controlling terminal, so the kernel sends no SIGWINCH: we do.
    kill(getpid(), SIGWINCH);
    resize = hub.Next();
    hub.Finish(id, MakeExit(0));
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("sh");
  exec.set_tty(true);
  Run run = RunWith(exec, nullptr, slave.get());
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(run.out, "$ ");
  hub->reset();
  ASSERT_TRUE(resize.has_value());
  ASSERT_TRUE(resize->has_resize()) << resize->DebugString();
  EXPECT_EQ(resize->resize().session(), 1u);
  EXPECT_EQ(resize->resize().size().rows(), 40u);
  EXPECT_EQ(resize->resize().size().cols(), 120u);
}

TEST_F(PumpTest, HangUpMidSessionFailsClearlyAfterWritingWhatCame) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    hub.Started(open->open().session(), "s-1");
    hub.SendData(open->open().session(), channel::STDOUT, "before\n");
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  channel::Exec exec;
  exec.add_argv("sleep");
  exec.set_stdin(true);
  const std::string input;  // Stdin open and empty: eof right away.
  Run run = RunWith(exec, &input);
  ASSERT_FALSE(run.result.ok());
  EXPECT_EQ(run.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(run.result.status().message(),
            "VM 'web': the control channel closed (the VM's supervisor "
            "stopped or restarted)");
  EXPECT_EQ(run.out, "before\n");
}

}  // namespace
}  // namespace fcvm::runner::exec
