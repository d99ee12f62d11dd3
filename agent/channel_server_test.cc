// The agent's channel server over a socketpair, with the test as the hub:
// a channel::Link of its own and a small poll loop. Sessions run in the VM
// (Exec.in_vm) so /bin/sh here runs them; podman is never reached.
#include "agent/channel_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/session_command.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"
#include "channel/link.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using channel::Frame;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// How long any one wait may take before the test fails instead of hanging.
constexpr absl::Duration kDeadline = absl::Seconds(10);
constexpr size_t kTenMiB = 10 * 1024 * 1024;

// What the hub has seen of one session.
struct SessionView {
  bool started = false;
  std::string id;  // Started.id: FCVM_SESSION's value.
  std::string out, err;
  bool out_eof = false, err_eof = false;
  std::optional<channel::Exit> exit;
  std::vector<channel::Error> errors;
  uint64_t output_bytes = 0;     // STDOUT and STDERR data received.
  uint64_t output_credited = 0;  // Credit sent back for it.
  uint64_t max_output_in_flight = 0;
  // Stdin: what is still to go, how much the server lets us send.
  std::string stdin_pending;
  bool stdin_eof_pending = false;
  uint64_t stdin_credit = channel::kWindowBytes;
  uint64_t stdin_sent = 0;
  uint64_t stdin_credited = 0;
};

// The host's end: a Link driven by poll, keeping what arrives per session.
class Host {
 public:
  // Uses its own copy of `fd`, so that a Host can go and another come.
  explicit Host(int fd) : link_("hub", "test") {
    link_.Attach(UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0)));
    handler_.frame = [this](Frame& frame) { OnFrame(frame); };
    handler_.peer = [this](const channel::Hello& hello, bool resumed) {
      ++hellos_;
      resumed_ = resumed;
      agent_version_ = hello.agent_version();
      // A new peer starts numbering afresh (Link::OnHello).
      if (!resumed) sent_ = 0;
    };
    handler_.garbage = [this](const absl::Status& error) {
      garbage_.push_back(std::string(error.message()));
    };
  }

  channel::Link& link() { return link_; }
  SessionView& session(uint64_t id) { return sessions_[id]; }
  // Drops what was seen of a session, to open its number again.
  void Forget(uint64_t id) { sessions_.erase(id); }
  const std::vector<channel::Error>& link_errors() const {
    return link_errors_;
  }
  const std::vector<std::string>& garbage() const { return garbage_; }
  int hellos() const { return hellos_; }
  bool resumed() const { return resumed_; }
  const std::string& agent_version() const { return agent_version_; }
  // Frames this Link has numbered since the peer's Hello.
  uint64_t sent() const { return sent_; }
  // Whether output is credited back as soon as it arrives ("written").
  void set_auto_credit(bool on) { auto_credit_ = on; }

  void Send(Frame frame) {
    link_.Send(std::move(frame));
    ++sent_;
  }

  uint64_t Open(const channel::Exec& exec, uint64_t id = 0) {
    if (id == 0) id = next_session_++;
    Frame frame;
    frame.mutable_open()->set_session(id);
    *frame.mutable_open()->mutable_exec() = exec;
    Send(std::move(frame));
    return id;
  }
  void Credit(uint64_t id, uint64_t bytes) {
    Frame frame;
    frame.mutable_credit()->set_session(id);
    frame.mutable_credit()->set_bytes(bytes);
    Send(std::move(frame));
    sessions_[id].output_credited += bytes;
  }
  // Queues stdin; the pump sends it within the server's credit.
  void WriteStdin(uint64_t id, absl::string_view data, bool eof) {
    SessionView& s = sessions_[id];
    s.stdin_pending.append(data.data(), data.size());
    s.stdin_eof_pending = s.stdin_eof_pending || eof;
  }
  void Resize(uint64_t id, uint32_t rows, uint32_t cols) {
    Frame frame;
    frame.mutable_resize()->set_session(id);
    frame.mutable_resize()->mutable_size()->set_rows(rows);
    frame.mutable_resize()->mutable_size()->set_cols(cols);
    Send(std::move(frame));
  }
  void Signal(uint64_t id, int signal) {
    Frame frame;
    frame.mutable_signal()->set_session(id);
    frame.mutable_signal()->set_signal(signal);
    Send(std::move(frame));
  }
  void Close(uint64_t id) {
    Frame frame;
    frame.mutable_close()->set_session(id);
    Send(std::move(frame));
  }

  // Writes out what is queued.
  [[nodiscard]] bool Flush() {
    return PumpUntil([&] { return !link_.wants_write(); });
  }

  // Writes bytes past the Link, once what it queued has gone.
  [[nodiscard]] bool WriteRaw(absl::string_view bytes) {
    if (!Flush()) return false;
    return WriteAll(link_.fd(), bytes, "the channel").ok();
  }

  // Pumps until `done` or kDeadline; false (and a failure) on the deadline.
  [[nodiscard]] bool PumpUntil(const std::function<bool()>& done,
                               absl::Duration timeout = kDeadline) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        ADD_FAILURE() << "the hub waited " << timeout << " in vain";
        return false;
      }
      if (absl::Status status =
              PumpOnce(std::min(left, absl::Milliseconds(50)));
          !status.ok()) {
        ADD_FAILURE() << status;
        return false;
      }
    }
    return true;
  }

  // Pumps for `duration` whatever happens (to see that nothing does).
  [[nodiscard]] bool PumpFor(absl::Duration duration) {
    const absl::Time end = absl::Now() + duration;
    for (absl::Duration left = duration; left > absl::ZeroDuration();
         left = end - absl::Now()) {
      if (absl::Status status = PumpOnce(left); !status.ok()) {
        ADD_FAILURE() << status;
        return false;
      }
    }
    return true;
  }

  [[nodiscard]] bool WaitStarted(uint64_t id) {
    return PumpUntil([&] { return sessions_[id].started; });
  }
  [[nodiscard]] bool WaitExit(uint64_t id) {
    return PumpUntil([&] { return sessions_[id].exit.has_value(); });
  }

 private:
  absl::Status PumpOnce(absl::Duration wait) {
    FeedStdin();
    if (absl::Status status = link_.Flush(); !status.ok()) return status;
    pollfd fd = {
        link_.fd(),
        static_cast<short>(POLLIN | (link_.wants_write() ? POLLOUT : 0)), 0};
    const int n = poll(&fd, 1,
                       static_cast<int>(absl::ToInt64Milliseconds(
                           absl::Ceil(wait, absl::Milliseconds(1)))));
    if (n < 0 && errno != EINTR) return absl::InternalError("poll failed");
    if (n > 0 && (fd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (absl::Status status = link_.OnReadable(handler_); !status.ok()) {
        return status;
      }
    }
    FeedStdin();
    return link_.Flush();
  }

  void FeedStdin() {
    if (!link_.up()) return;
    for (auto& [id, s] : sessions_) {
      while (!s.stdin_pending.empty() && s.stdin_credit > 0) {
        const size_t n = std::min<uint64_t>(
            {s.stdin_pending.size(), s.stdin_credit, channel::kMaxDataBytes});
        Frame frame;
        frame.mutable_data()->set_session(id);
        frame.mutable_data()->set_stream(channel::STDIN);
        frame.mutable_data()->set_data(s.stdin_pending.substr(0, n));
        s.stdin_pending.erase(0, n);
        s.stdin_credit -= n;
        s.stdin_sent += n;
        if (s.stdin_pending.empty() && s.stdin_eof_pending) {
          frame.mutable_data()->set_eof(true);
          s.stdin_eof_pending = false;
        }
        Send(std::move(frame));
      }
      if (s.stdin_pending.empty() && s.stdin_eof_pending) {
        Frame frame;
        frame.mutable_data()->set_session(id);
        frame.mutable_data()->set_stream(channel::STDIN);
        frame.mutable_data()->set_eof(true);
        s.stdin_eof_pending = false;
        Send(std::move(frame));
      }
    }
  }

  void OnFrame(Frame& frame) {
    switch (frame.body_case()) {
      case Frame::kStarted: {
        SessionView& s = sessions_[frame.started().session()];
        EXPECT_FALSE(s.started) << "a second Started";
        s.started = true;
        s.id = frame.started().id();
        return;
      }
      case Frame::kData: {
        SessionView& s = sessions_[frame.data().session()];
        EXPECT_FALSE(s.exit.has_value()) << "data after Exit";
        const std::string& data = frame.data().data();
        if (frame.data().stream() == channel::STDOUT) {
          EXPECT_FALSE(s.out_eof) << "stdout after its end";
          s.out += data;
          if (frame.data().eof()) s.out_eof = true;
        } else if (frame.data().stream() == channel::STDERR) {
          EXPECT_FALSE(s.err_eof) << "stderr after its end";
          s.err += data;
          if (frame.data().eof()) s.err_eof = true;
        } else {
          ADD_FAILURE() << "data on stream " << frame.data().stream();
        }
        EXPECT_LE(data.size(), channel::kMaxDataBytes);
        s.output_bytes += data.size();
        s.max_output_in_flight = std::max<uint64_t>(
            s.max_output_in_flight, s.output_bytes - s.output_credited);
        if (auto_credit_ && !data.empty()) {
          Credit(frame.data().session(), data.size());
        }
        return;
      }
      case Frame::kCredit: {
        SessionView& s = sessions_[frame.credit().session()];
        s.stdin_credit += frame.credit().bytes();
        s.stdin_credited += frame.credit().bytes();
        EXPECT_LE(s.stdin_credited, s.stdin_sent)
            << "credit for stdin never sent";
        return;
      }
      case Frame::kExit: {
        SessionView& s = sessions_[frame.exit().session()];
        EXPECT_FALSE(s.exit.has_value()) << "a second Exit";
        s.exit = frame.exit();
        return;
      }
      case Frame::kError:
        if (frame.error().session() == 0) {
          link_errors_.push_back(frame.error());
        } else {
          sessions_[frame.error().session()].errors.push_back(frame.error());
        }
        return;
      default:
        ADD_FAILURE() << "unexpected frame " << frame.ShortDebugString();
        return;
    }
  }

  channel::Link link_;
  channel::Link::Handler handler_;
  std::map<uint64_t, SessionView> sessions_;
  std::vector<channel::Error> link_errors_;
  std::vector<std::string> garbage_;
  int hellos_ = 0;
  bool resumed_ = false;
  std::string agent_version_;
  uint64_t sent_ = 0;
  uint64_t next_session_ = 1;
  bool auto_credit_ = true;
};

channel::Exec InVm(std::vector<std::string> argv) {
  channel::Exec exec;
  exec.set_in_vm(true);
  for (std::string& arg : argv) exec.add_argv(std::move(arg));
  return exec;
}

channel::Exec Shell(const std::string& script) {
  return InVm({"sh", "-c", script});
}

// Whether `name` is "<8 hex digits>-<number>": a session name that fits in
// the environment and in Started's string field (valid UTF-8).
bool IsSessionName(absl::string_view name) {
  if (name.size() < 10 || name[8] != '-') return false;
  for (char c : name.substr(0, 8)) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) return false;
  }
  for (char c : name.substr(9)) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

// Waits until `done` holds of the session's processes in /proc.
[[nodiscard]] bool WaitProcesses(
    const std::string& session_id,
    const std::function<bool(const std::vector<pid_t>&)>& done) {
  const absl::Time deadline = absl::Now() + kDeadline;
  std::vector<pid_t> pids;
  while (!done(pids = SessionProcesses("/proc", session_id))) {
    if (absl::Now() > deadline) {
      ADD_FAILURE() << "session " << session_id << " has " << pids.size()
                    << " processes";
      return false;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

[[nodiscard]] bool WaitNoProcesses(const std::string& session_id) {
  return WaitProcesses(
      session_id, [](const std::vector<pid_t>& pids) { return pids.empty(); });
}

// Where two big strings first differ, for a readable failure.
std::string Compare(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return absl::StrCat("got ", got.size(), " bytes, want ", want.size(),
                      "; first difference at byte ", i);
}

// `seq FIRST LAST`'s output, cut to `bytes`.
std::string SeqOutput(int first, int last, size_t bytes) {
  std::string out;
  for (int i = first; i <= last && out.size() < bytes; ++i) {
    absl::StrAppend(&out, i, "\n");
  }
  out.resize(std::min(out.size(), bytes));
  return out;
}

class ChannelServerTest : public ::testing::Test {
 protected:
  // Outlives the test if ServeChannel never returns (the test fails).
  struct ServerState {
    ChannelServerOptions options;
    std::promise<absl::Status> result;
  };

  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    host_fd_.reset(fds[0]);
    ASSERT_EQ(fcntl(host_fd_.get(), F_SETFL, O_NONBLOCK), 0);
    tmp_ = std::getenv("TEST_TMPDIR");
    auto state = std::make_shared<ServerState>();
    state->options.podman = tmp_ + "/no-such-podman";
    state->options.container = "no-such-container";
    state->options.version = "fc-agent-test";
    served_ = state->result.get_future();
    server_ = std::thread([state, fd = fds[1]] {
      state->result.set_value(ServeChannel(state->options, UniqueFd(fd)));
    });
    host_ = std::make_unique<Host>(host_fd_.get());
    ASSERT_TRUE(host_->PumpUntil([&] { return host_->link().up(); }));
  }

  void TearDown() override {
    if (!server_.joinable()) return;
    HangUp();
    std::optional<absl::Status> status = WaitServed();
    if (!status.has_value()) {
      ADD_FAILURE() << "ServeChannel did not return after the hub hung up";
      server_.detach();
      return;
    }
    server_.join();
  }

  void HangUp() {
    host_.reset();
    host_fd_.reset();
  }

  // ServeChannel's result, nullopt if it has not returned by kDeadline.
  std::optional<absl::Status> WaitServed() {
    if (!served_.valid()) return served_status_;
    if (served_.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(
            kDeadline))) != std::future_status::ready) {
      return std::nullopt;
    }
    served_status_ = served_.get();
    return served_status_;
  }

  // Runs a session to its end (auto-credited) and returns it.
  SessionView Run(const channel::Exec& exec) {
    const uint64_t id = host_->Open(exec);
    EXPECT_TRUE(host_->WaitExit(id));
    return host_->session(id);
  }

  std::string tmp_;
  UniqueFd host_fd_;
  std::unique_ptr<Host> host_;
  std::thread server_;
  std::future<absl::Status> served_;
  std::optional<absl::Status> served_status_;
};

TEST_F(ChannelServerTest, HelloCarriesTheAgentVersion) {
  EXPECT_EQ(host_->hellos(), 1);
  EXPECT_FALSE(host_->resumed());
  EXPECT_EQ(host_->agent_version(), "fc-agent-test");
}

TEST_F(ChannelServerTest, ExitZero) {
  SessionView s = Run(InVm({"true"}));
  EXPECT_TRUE(s.started);
  EXPECT_TRUE(IsSessionName(s.id)) << absl::CHexEscape(s.id);
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->session(), 1u);
  EXPECT_EQ(s.exit->code(), 0);
  EXPECT_EQ(s.exit->signal(), 0);
  EXPECT_FALSE(s.exit->timed_out());
  EXPECT_EQ(s.exit->message(), "");
  EXPECT_TRUE(s.out_eof);
  EXPECT_TRUE(s.err_eof);
  EXPECT_EQ(s.out, "");
  EXPECT_EQ(s.err, "");
}

TEST_F(ChannelServerTest, ExitCodeAndOutput) {
  SessionView s = Run(Shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 3);
  EXPECT_EQ(s.exit->signal(), 0);
  EXPECT_EQ(s.exit->message(), "");
  EXPECT_EQ(s.out, "out\n");
  EXPECT_EQ(s.err, "err\n");
}

TEST_F(ChannelServerTest, EnvAndWorkingDir) {
  channel::Exec exec = Shell("echo $GREETING; pwd; echo $FCVM_SESSION");
  exec.add_env("GREETING=hello there");
  exec.set_working_dir(tmp_);
  SessionView s = Run(exec);
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 0);
  EXPECT_EQ(s.out, absl::StrCat("hello there\n", tmp_, "\n", s.id, "\n"));
}

TEST_F(ChannelServerTest, CommandNotFoundIs127) {
  SessionView s = Run(InVm({"fcvm-no-such-command", "x"}));
  EXPECT_TRUE(s.started);
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 127);
  EXPECT_EQ(s.exit->signal(), 0);
  EXPECT_EQ(s.exit->message(),
            "fcvm-no-such-command: No such file or directory");
}

TEST_F(ChannelServerTest, NotExecutableIs126) {
  const std::string script = tmp_ + "/not-executable.sh";
  ASSERT_TRUE(WriteFileAtomically(script, "#!/bin/sh\necho hi\n", 0644,
                                  Durability::kUnsynced)
                  .ok());
  SessionView s = Run(InVm({script}));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 126);
  EXPECT_EQ(s.exit->signal(), 0);
  EXPECT_EQ(s.exit->message(), script + ": Permission denied");
  EXPECT_EQ(s.out, "");
}

TEST_F(ChannelServerTest, MissingWorkingDirIsNamed) {
  channel::Exec exec = InVm({"true"});
  exec.set_working_dir(tmp_ + "/no-such-dir");
  SessionView s = Run(exec);
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 127);
  EXPECT_EQ(s.exit->message(), absl::StrCat("working directory '", tmp_,
                                            "/no-such-dir': No such file or "
                                            "directory"));
}

TEST_F(ChannelServerTest, KilledBySignal) {
  SessionView s = Run(Shell("kill -9 $$"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 137);
  EXPECT_EQ(s.exit->signal(), 9);
  EXPECT_FALSE(s.exit->timed_out());
  EXPECT_EQ(s.exit->message(), "killed by signal 9 (Killed)");
}

TEST_F(ChannelServerTest, SignalFrameReachesTheSession) {
  const uint64_t id = host_->Open(InVm({"sleep", "1000"}));
  ASSERT_TRUE(host_->WaitStarted(id));
  host_->Signal(id, SIGTERM);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(host_->session(id).exit->code(), 128 + SIGTERM);
  EXPECT_EQ(host_->session(id).exit->signal(), SIGTERM);
  EXPECT_EQ(host_->session(id).exit->message(),
            "killed by signal 15 (Terminated)");
}

TEST_F(ChannelServerTest, BadRequestsAreRefused) {
  const uint64_t empty = host_->Open(InVm({}));
  channel::Exec relative = InVm({"true"});
  relative.set_working_dir("tmp");
  const uint64_t bad_dir = host_->Open(relative);
  const uint64_t fine = host_->Open(InVm({"true"}));
  ASSERT_TRUE(host_->PumpUntil([&] {
    return !host_->session(empty).errors.empty() &&
           !host_->session(bad_dir).errors.empty();
  }));
  EXPECT_EQ(host_->session(empty).errors[0].code(),
            channel::Error::BAD_REQUEST);
  EXPECT_EQ(host_->session(empty).errors[0].message(), "exec: no command");
  EXPECT_EQ(host_->session(bad_dir).errors[0].message(),
            "exec: working directory 'tmp' is not absolute");
  EXPECT_FALSE(host_->session(empty).started);
  // The bad ones do not disturb the next.
  ASSERT_TRUE(host_->WaitExit(fine));
  EXPECT_EQ(host_->session(fine).exit->code(), 0);
}

TEST_F(ChannelServerTest, PodmanRequestsFailWithoutPodman) {
  const std::string podman = tmp_ + "/no-such-podman";
  Frame copy;
  copy.mutable_open()->set_session(1);
  copy.mutable_open()->mutable_copy_out()->set_path("/etc/hosts");
  host_->Send(copy);
  Frame stat;
  stat.mutable_open()->set_session(2);
  stat.mutable_open()->mutable_stat()->set_path("/etc/hosts");
  host_->Send(stat);
  Frame relative;
  relative.mutable_open()->set_session(3);
  relative.mutable_open()->mutable_stat()->set_path("etc/hosts");
  host_->Send(relative);
  Frame container;
  container.mutable_open()->set_session(4);
  *container.mutable_open()->mutable_exec() = InVm({"true"});
  container.mutable_open()->mutable_exec()->set_in_vm(false);
  host_->Send(container);
  ASSERT_TRUE(host_->WaitExit(1));
  ASSERT_TRUE(host_->WaitExit(4));
  ASSERT_TRUE(host_->PumpUntil([&] {
    return !host_->session(2).errors.empty() &&
           !host_->session(3).errors.empty();
  }));
  EXPECT_EQ(host_->session(1).exit->code(), 127);
  EXPECT_EQ(host_->session(1).exit->message(),
            podman + ": No such file or directory");
  EXPECT_EQ(host_->session(4).exit->code(), 127);
  EXPECT_EQ(host_->session(4).exit->message(),
            podman + ": No such file or directory");
  EXPECT_EQ(host_->session(2).errors[0].code(), channel::Error::BAD_REQUEST);
  EXPECT_EQ(host_->session(2).errors[0].message(),
            "stat: " + podman + ": No such file or directory");
  EXPECT_EQ(host_->session(3).errors[0].message(),
            "stat 'etc/hosts': not an absolute path");
}

TEST_F(ChannelServerTest, TooManySessionsAreRefused) {
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < channel::kMaxSessions; ++i) {
    ids.push_back(host_->Open(InVm({"sleep", "1000"})));
  }
  ASSERT_TRUE(host_->PumpUntil([&] {
    return std::all_of(ids.begin(), ids.end(),
                       [&](uint64_t id) { return host_->session(id).started; });
  }));
  const uint64_t extra = host_->Open(InVm({"true"}));
  ASSERT_TRUE(
      host_->PumpUntil([&] { return !host_->session(extra).errors.empty(); }));
  EXPECT_EQ(host_->session(extra).errors[0].code(), channel::Error::TOO_MANY);
  EXPECT_EQ(host_->session(extra).errors[0].message(),
            "the agent runs 64 sessions already");
  EXPECT_FALSE(host_->session(extra).started);
  // One closed, one more fits.
  host_->Close(ids[0]);
  const uint64_t next = host_->Open(InVm({"true"}));
  ASSERT_TRUE(host_->WaitExit(next));
  EXPECT_EQ(host_->session(next).exit->code(), 0);
}

TEST_F(ChannelServerTest, SessionNumberInUseIsRefused) {
  const uint64_t id = host_->Open(InVm({"sleep", "1000"}));
  ASSERT_TRUE(host_->WaitStarted(id));
  host_->Open(InVm({"true"}), id);
  ASSERT_TRUE(
      host_->PumpUntil([&] { return !host_->session(id).errors.empty(); }));
  EXPECT_EQ(host_->session(id).errors[0].code(), channel::Error::BAD_REQUEST);
  EXPECT_EQ(host_->session(id).errors[0].message(),
            absl::StrCat("session ", id, " is not a new session number"));
  const std::string name = host_->session(id).id;
  host_->Close(id);
  ASSERT_TRUE(host_->Flush());
  EXPECT_TRUE(WaitNoProcesses(name));
}

TEST_F(ChannelServerTest, TenMebibytesOfStdoutAndStderrApart) {
  SessionView s =
      Run(Shell("seq 1 2000000 | head -c 10485760 & "
                "seq 5000000 7000000 | head -c 10485760 >&2; wait"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.exit->code(), 0);
  EXPECT_EQ(Compare(s.out, SeqOutput(1, 2000000, kTenMiB)), "");
  EXPECT_EQ(Compare(s.err, SeqOutput(5000000, 7000000, kTenMiB)), "");
  EXPECT_EQ(s.output_bytes, 2 * kTenMiB);
  EXPECT_LE(s.max_output_in_flight, channel::kWindowBytes);
}

TEST_F(ChannelServerTest, OutputStopsAtTheWindowUntilCredited) {
  host_->set_auto_credit(false);
  constexpr uint64_t kTotal = 4 * channel::kWindowBytes;
  const uint64_t id = host_->Open(
      Shell(absl::StrCat("head -c ", kTotal / 2, " /dev/zero; head -c ",
                         kTotal / 2, " /dev/zero >&2")));
  SessionView& s = host_->session(id);
  ASSERT_TRUE(host_->PumpUntil(
      [&] { return s.output_bytes >= channel::kWindowBytes; }));
  // Nothing more comes, however long we wait, until we credit it.
  ASSERT_TRUE(host_->PumpFor(absl::Milliseconds(300)));
  EXPECT_EQ(s.output_bytes, channel::kWindowBytes);
  EXPECT_FALSE(s.exit.has_value());

  host_->Credit(id, channel::kWindowBytes / 2);
  ASSERT_TRUE(host_->PumpUntil(
      [&] { return s.output_bytes >= channel::kWindowBytes * 3 / 2; }));
  ASSERT_TRUE(host_->PumpFor(absl::Milliseconds(300)));
  EXPECT_EQ(s.output_bytes, channel::kWindowBytes * 3 / 2);

  // From here a correct host: the rest flows and the session ends.
  host_->set_auto_credit(true);
  host_->Credit(id, s.output_bytes - s.output_credited);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(s.exit->code(), 0);
  EXPECT_EQ(s.out, std::string(kTotal / 2, '\0'));
  EXPECT_EQ(s.err, std::string(kTotal / 2, '\0'));
  EXPECT_EQ(s.max_output_in_flight, channel::kWindowBytes);
}

TEST_F(ChannelServerTest, TenMebibytesOfStdinEchoed) {
  std::string input(kTenMiB, '\0');
  std::mt19937 random(20240501);
  for (char& c : input) c = static_cast<char>(random());
  channel::Exec exec = InVm({"cat"});
  exec.set_stdin(true);
  const uint64_t id = host_->Open(exec);
  host_->WriteStdin(id, input, /*eof=*/true);
  ASSERT_TRUE(host_->WaitExit(id));
  const SessionView& s = host_->session(id);
  EXPECT_EQ(s.exit->code(), 0);
  EXPECT_EQ(Compare(s.out, input), "");
  EXPECT_EQ(s.err, "");
  EXPECT_EQ(s.stdin_sent, kTenMiB);
  EXPECT_EQ(s.stdin_credited, kTenMiB);
}

TEST_F(ChannelServerTest, StdinIsNullWithoutTheFlag) {
  // Data for a session that did not ask for stdin goes nowhere.
  const uint64_t id = host_->Open(Shell("cat; echo done"));
  host_->WriteStdin(id, "ignored\n", /*eof=*/true);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(host_->session(id).out, "done\n");
  EXPECT_EQ(host_->session(id).stdin_credited, 0u);
}

TEST_F(ChannelServerTest, StdinAfterTheProcessClosedItIsCreditedAndDropped) {
  // Writing to the closed pipe is EPIPE for the server (not SIGPIPE).
  channel::Exec exec = Shell("exec <&-; echo closed; sleep 1000");
  exec.set_stdin(true);
  const uint64_t id = host_->Open(exec);
  SessionView& s = host_->session(id);
  ASSERT_TRUE(host_->PumpUntil([&] { return s.out == "closed\n"; }));
  host_->WriteStdin(id, std::string(100, 'x'), /*eof=*/false);
  ASSERT_TRUE(host_->PumpUntil([&] { return s.stdin_credited == 100; }));
  host_->Signal(id, SIGTERM);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(s.exit->code(), 128 + SIGTERM);
  EXPECT_EQ(s.out, "closed\n");
}

TEST_F(ChannelServerTest, TwentyConcurrentSessions) {
  constexpr int kSessions = 20;
  std::vector<uint64_t> ids;
  for (int i = 1; i <= kSessions; ++i) {
    channel::Exec exec = Shell(
        absl::StrCat("read line; echo \"$line\"; echo ", i, " >&2; exit ", i));
    exec.set_stdin(true);
    ids.push_back(host_->Open(exec));
  }
  ASSERT_TRUE(host_->PumpUntil([&] {
    return std::all_of(ids.begin(), ids.end(),
                       [&](uint64_t id) { return host_->session(id).started; });
  }));
  // All of them run at once: each waits for its line.
  for (uint64_t id : ids) {
    ASSERT_TRUE(WaitProcesses(
        host_->session(id).id,
        [](const std::vector<pid_t>& pids) { return !pids.empty(); }));
    EXPECT_FALSE(host_->session(id).exit.has_value());
  }
  for (uint64_t id : ids) {
    host_->WriteStdin(id, absl::StrCat("line ", id, "\n"), /*eof=*/true);
  }
  ASSERT_TRUE(host_->PumpUntil([&] {
    return std::all_of(ids.begin(), ids.end(), [&](uint64_t id) {
      return host_->session(id).exit.has_value();
    });
  }));
  std::vector<std::string> names;
  for (int i = 0; i < kSessions; ++i) {
    const SessionView& s = host_->session(ids[i]);
    EXPECT_EQ(s.exit->code(), i + 1);
    EXPECT_EQ(s.out, absl::StrCat("line ", ids[i], "\n"));
    EXPECT_EQ(s.err, absl::StrCat(i + 1, "\n"));
    EXPECT_TRUE(IsSessionName(s.id)) << absl::CHexEscape(s.id);
    names.push_back(s.id);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end())
      << "two sessions with one FCVM_SESSION";
}

TEST_F(ChannelServerTest, TimeoutKillsEveryProcessOfTheSession) {
  channel::Exec exec = Shell("sleep 1000 & sleep 1000");
  exec.set_timeout_ms(500);
  const absl::Time start = absl::Now();
  const uint64_t id = host_->Open(exec);
  ASSERT_TRUE(host_->WaitStarted(id));
  const std::string name = host_->session(id).id;
  // The shell and both sleeps (dash execs the last: two processes).
  size_t running = 0;
  ASSERT_TRUE(WaitProcesses(name, [&](const std::vector<pid_t>& pids) {
    running = pids.size();
    return pids.size() >= 2;
  }));
  ASSERT_TRUE(host_->WaitExit(id));
  const SessionView& s = host_->session(id);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_TRUE(s.exit->timed_out());
  EXPECT_EQ(s.exit->code(), 137);
  EXPECT_EQ(s.exit->signal(), 9);
  EXPECT_EQ(s.exit->message(),
            absl::StrCat("timed out after 500ms: killed ", running,
                         " processes of the session"));
  EXPECT_TRUE(WaitNoProcesses(name));
}

TEST_F(ChannelServerTest, TerminalSizeResizeAndInput) {
  channel::Exec exec =
      Shell("stty size; read x; stty size; echo got:$x; echo $TERM");
  exec.set_tty(true);
  exec.mutable_size()->set_rows(40);
  exec.mutable_size()->set_cols(100);
  const uint64_t id = host_->Open(exec);
  SessionView& s = host_->session(id);
  ASSERT_TRUE(host_->PumpUntil([&] { return absl::StrContains(s.out, "\n"); }));
  EXPECT_EQ(s.out, "40 100\r\n");
  host_->Resize(id, 50, 120);
  host_->WriteStdin(id, "hello\n", /*eof=*/false);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(s.exit->code(), 0);
  // The terminal echoes the line, then the shell answers.
  EXPECT_EQ(s.out, "40 100\r\nhello\r\n50 120\r\ngot:hello\r\nxterm\r\n");
  EXPECT_EQ(s.err, "");
  EXPECT_TRUE(s.out_eof);
}

TEST_F(ChannelServerTest, CtrlCInterruptsATerminalSession) {
  channel::Exec exec = InVm({"sleep", "1000"});
  exec.set_tty(true);
  const uint64_t id = host_->Open(exec);
  ASSERT_TRUE(host_->WaitStarted(id));
  host_->WriteStdin(id, "\x03", /*eof=*/false);
  ASSERT_TRUE(host_->WaitExit(id));
  const SessionView& s = host_->session(id);
  EXPECT_EQ(s.exit->code(), 130);
  EXPECT_EQ(s.exit->signal(), SIGINT);
  EXPECT_EQ(s.exit->message(), "killed by signal 2 (Interrupt)");
  EXPECT_EQ(s.out, "^C");
}

TEST_F(ChannelServerTest, CloseKillsTheSession) {
  const uint64_t id = host_->Open(Shell("sleep 1000 & sleep 1000"));
  ASSERT_TRUE(host_->WaitStarted(id));
  const std::string name = host_->session(id).id;
  ASSERT_TRUE(WaitProcesses(
      name, [](const std::vector<pid_t>& pids) { return pids.size() >= 2; }));
  host_->Close(id);
  ASSERT_TRUE(host_->Flush());
  EXPECT_TRUE(WaitNoProcesses(name));
  // The number is free again, and the server serves on.
  host_->Forget(id);
  host_->Open(InVm({"true"}), id);
  ASSERT_TRUE(
      host_->PumpUntil([&] { return host_->session(id).exit.has_value(); }));
  EXPECT_EQ(host_->session(id).exit->code(), 0);
}

TEST_F(ChannelServerTest, SessionsGetOnlyTheirStdio) {
  // A terminal session's master, and every fd the server has or inherited,
  // stays out of the processes of later sessions.
  channel::Exec tty = InVm({"sleep", "1000"});
  tty.set_tty(true);
  const uint64_t first = host_->Open(tty);
  ASSERT_TRUE(host_->WaitStarted(first));
  // The shell's own fds; the test skips the one its glob reads with.
  SessionView s = Run(Shell(
      "for f in /proc/$$/fd/*; do [ -e $f ] && echo ${f##*/}; done; true"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.out, "0\n1\n2\n");
  host_->Close(first);
}

// A Frame whose body is field 99: what a newer hub might send.
std::string UnknownFrame(uint64_t seq) {
  Frame frame;
  frame.set_seq(seq);
  std::string payload = frame.SerializeAsString();
  // Field 99, varint: tag (99 << 3 | 0) = 792 = 0x98 0x06, value 1.
  payload += "\x98\x06\x01";
  std::string out = {
      'F', 'C', 'V', static_cast<char>(channel::kProtocolVersion),
      0,   0,   0,   static_cast<char>(payload.size())};
  return out + payload;
}

TEST_F(ChannelServerTest, UnknownMessageIsAnsweredAndIgnored) {
  const uint64_t before = host_->Open(InVm({"true"}));
  ASSERT_TRUE(host_->WaitExit(before));
  ASSERT_TRUE(host_->WriteRaw(UnknownFrame(host_->sent() + 1)));
  // The Link numbers its next frame as the raw one was: the server drops
  // this one as a repeat, and the numbers agree again.
  host_->Credit(999, 1);
  ASSERT_TRUE(host_->PumpUntil([&] { return !host_->link_errors().empty(); }));
  ASSERT_THAT(host_->link_errors(), SizeIs(1));
  EXPECT_EQ(host_->link_errors()[0].code(), channel::Error::UNKNOWN_MESSAGE);
  EXPECT_EQ(host_->link_errors()[0].session(), 0u);
  EXPECT_EQ(host_->link_errors()[0].message(),
            "unknown message (field 99) for channel protocol 1");
  SessionView s = Run(Shell("echo still here"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.out, "still here\n");
  EXPECT_THAT(host_->garbage(), IsEmpty());
}

TEST_F(ChannelServerTest, GarbageIsReportedAndTheLinkRecovers) {
  channel::Exec exec = InVm({"cat"});
  exec.set_stdin(true);
  const uint64_t id = host_->Open(exec);
  ASSERT_TRUE(host_->WaitStarted(id));
  ASSERT_TRUE(host_->WriteRaw("this is not a frame\n"));
  ASSERT_TRUE(host_->PumpUntil([&] { return host_->hellos() == 2; }));
  EXPECT_THAT(host_->garbage(), ElementsAre("agent: bad frame: no FCV header; "
                                            "skipping to the next Hello"));
  // The same two ends: the session lives on.
  EXPECT_TRUE(host_->resumed());
  host_->WriteStdin(id, "after\n", /*eof=*/true);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(host_->session(id).out, "after\n");
  EXPECT_EQ(host_->session(id).exit->code(), 0);
  SessionView s = Run(Shell("echo new"));
  ASSERT_TRUE(s.exit.has_value());
  EXPECT_EQ(s.out, "new\n");
}

TEST_F(ChannelServerTest, NewHubDropsTheOldSessions) {
  const uint64_t id = host_->Open(Shell("sleep 1000 & sleep 1000"));
  ASSERT_TRUE(host_->WaitStarted(id));
  const std::string name = host_->session(id).id;
  ASSERT_TRUE(WaitProcesses(
      name, [](const std::vector<pid_t>& pids) { return pids.size() >= 2; }));

  host_ = std::make_unique<Host>(host_fd_.get());
  ASSERT_TRUE(host_->PumpUntil([&] { return host_->link().up(); }));
  EXPECT_FALSE(host_->resumed());
  EXPECT_TRUE(WaitNoProcesses(name));
  // The old number means nothing now: it names a new session.
  host_->Open(Shell("echo fresh"), id);
  ASSERT_TRUE(host_->WaitExit(id));
  EXPECT_EQ(host_->session(id).out, "fresh\n");
  EXPECT_THAT(host_->session(id).errors, IsEmpty());
}

TEST_F(ChannelServerTest, HubHangUpEndsServing) {
  const uint64_t id = host_->Open(Shell("sleep 1000 & sleep 1000"));
  ASSERT_TRUE(host_->WaitStarted(id));
  const std::string name = host_->session(id).id;
  HangUp();
  std::optional<absl::Status> status = WaitServed();
  ASSERT_TRUE(status.has_value()) << "ServeChannel still serves";
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable) << *status;
  EXPECT_EQ(status->message(), "the channel's peer hung up");
  // What the server ran for the hub that went away ends with it.
  EXPECT_TRUE(WaitNoProcesses(name));
}

TEST_F(ChannelServerTest, HubHangUpWhileStreaming) {
  // The server is writing when the hub goes: an error, not SIGPIPE.
  const uint64_t id = host_->Open(Shell("sleep 1000 & yes"));
  ASSERT_TRUE(
      host_->PumpUntil([&] { return host_->session(id).output_bytes > 0; }));
  const std::string name = host_->session(id).id;
  HangUp();
  std::optional<absl::Status> status = WaitServed();
  ASSERT_TRUE(status.has_value()) << "ServeChannel still serves";
  EXPECT_THAT(
      status->ToString(),
      AnyOf(Eq("UNAVAILABLE: the channel's peer hung up"),
            Eq("UNAVAILABLE: reading the channel: Connection reset "
               "by peer"),
            Eq("FAILED_PRECONDITION: writing the channel: Broken pipe")));
  EXPECT_TRUE(WaitNoProcesses(name));
}

}  // namespace
}  // namespace fcvm::agent
