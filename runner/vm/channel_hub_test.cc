#include "runner/vm/channel_hub.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"
#include "channel/link.h"
#include "channel/names.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using channel::Frame;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Every wait ends by then: a hub that never answers fails the test.
constexpr absl::Duration kTimeout = absl::Seconds(10);
constexpr char kAgentVersion[] = "fc-agent 1.0";
constexpr char kVmName[] = "test-vm";
constexpr char kVsockSocket[] = "v.sock";  // As the supervisor names it.

// A frame from its text format, so that expectations read like the frames.
Frame F(const std::string& text) {
  Frame frame;
  if (!google::protobuf::TextFormat::ParseFromString(text, &frame)) {
    ADD_FAILURE() << "not a Frame in text format: " << text;
  }
  return frame;
}

// One line for a frame without the link's seq/ack: what the comparisons
// look at.
std::string Text(Frame frame) {
  frame.clear_seq();
  frame.clear_ack();
  return frame.ShortDebugString();
}
std::string Text(const std::string& text) { return Text(F(text)); }

// The hub's answers to a client's Hello while the agent is down, and up.
std::string DownHello(absl::string_view transport = "virtio-serial") {
  return Text(
      absl::StrCat("hello { version: 1 role: 'hub' agent_up: false "
                   "transport: '",
                   transport, "' }"));
}
std::string UpHello(absl::string_view transport = "virtio-serial") {
  return Text(
      absl::StrCat("hello { version: 1 role: 'hub' agent_up: true "
                   "transport: '",
                   transport, "' agent_version: 'fc-agent 1.0' }"));
}

std::string Errno(absl::string_view what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

// Milliseconds until `deadline` for poll(2), at least 0.
int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

// One connection accepted from `listener` (non-blocking, as the Link
// wants), or an invalid fd once `timeout` passed.
UniqueFd Accept(int listener, absl::Duration timeout = kTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    pollfd pfd = {listener, POLLIN, 0};
    const int n = poll(&pfd, 1, MillisUntil(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ADD_FAILURE() << Errno("poll");
      return UniqueFd();
    }
    if (n == 0) {
      ADD_FAILURE() << "the hub did not connect within " << timeout;
      return UniqueFd();
    }
    UniqueFd fd(
        accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (fd.valid()) return fd;
    if (errno != EAGAIN && errno != EINTR) {
      ADD_FAILURE() << Errno("accept4");
      return UniqueFd();
    }
  }
}

// Reads one line (with its "\n") byte by byte, leaving what follows it in
// the socket, as Firecracker reads "CONNECT <port>\n".
std::string ReadLine(int fd, absl::Duration timeout = kTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string line;
  while (line.empty() || line.back() != '\n') {
    pollfd pfd = {fd, POLLIN, 0};
    const int n = poll(&pfd, 1, MillisUntil(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ADD_FAILURE() << "no whole line within " << timeout << ", got '" << line
                    << "'";
      return line;
    }
    char c;
    const ssize_t got = read(fd, &c, 1);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) {
      ADD_FAILURE() << "the line ended early: '" << line << "'";
      return line;
    }
    line.push_back(c);
  }
  return line;
}

// A socket the test's poll loop reads (and writes).
class Peer {
 public:
  virtual ~Peer() = default;
  // -1: not polled.
  virtual int fd() const = 0;
  virtual short events() const { return POLLIN; }
  virtual void Flush() {}
  virtual void OnReady(short revents) = 0;
};

// The guest's agent as far as the hub can tell: a Link("agent") on the
// connection the hub made to the VMM's socket.
class FakeAgent : public Peer {
 public:
  FakeAgent() : link_("agent", kAgentVersion) {
    handler_.frame = [this](Frame& frame) { frames.push_back(frame); };
    handler_.peer = [this](const channel::Hello&, bool resumed) {
      peers.push_back(resumed);
    };
    handler_.garbage = [this](const absl::Status& error) {
      garbage.push_back(error.ToString());
    };
  }

  channel::Link& link() { return link_; }
  void Send(const std::string& text) { link_.Send(F(text)); }

  int fd() const override { return link_.attached() ? link_.fd() : -1; }
  short events() const override {
    return POLLIN | (link_.wants_write() ? POLLOUT : 0);
  }
  void Flush() override {
    if (!link_.attached()) return;
    // A write error ends the transport as a read error does; tests that
    // care look at `ended`.
    if (absl::Status flushed = link_.Flush(); !flushed.ok()) {
      ended.push_back(flushed.ToString());
      link_.Detach();
    }
  }
  void OnReady(short revents) override {
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      const absl::Status read = link_.OnReadable(handler_);
      if (!read.ok()) {
        ended.push_back(read.ToString());
        link_.Detach();
        return;
      }
    }
    Flush();
  }

  std::vector<Frame> frames;  // From the hub, in order.
  size_t next = 0;            // The first not looked at yet.
  // Each hub Hello the link counted as a meeting: resumed or not (how
  // many there are is the link's business; which kind is the hub's).
  std::vector<bool> peers;
  // How often the agent met the hub as a new peer.
  size_t new_peers() const {
    return static_cast<size_t>(std::count(peers.begin(), peers.end(), false));
  }
  std::vector<std::string> garbage;
  std::vector<std::string> ended;  // How the transport ended.

 private:
  channel::Link link_;
  channel::Link::Handler handler_;
};

// A client as `fcvm exec` is one: frames without seq/ack on a plain
// connection to the hub's socket.
class TestClient : public Peer {
 public:
  explicit TestClient(UniqueFd fd) : fd_(std::move(fd)) {}

  void Send(const std::string& text) {
    SendBytes(channel::EncodeFrame(F(text)));
  }
  void SendBytes(absl::string_view bytes) {
    const absl::Status sent = WriteAll(fd_.get(), bytes, "the hub");
    EXPECT_TRUE(sent.ok()) << sent;
  }
  // The client goes away.
  void Hangup() { fd_.reset(); }

  int fd() const override { return eof ? -1 : fd_.get(); }
  void OnReady(short) override {
    char buffer[65536];
    const ssize_t got = read(fd_.get(), buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) return;
    if (got <= 0) {
      eof = true;
      return;
    }
    reader_.Feed(absl::string_view(buffer, got));
    for (;;) {
      absl::StatusOr<std::optional<Frame>> next = reader_.Next();
      if (!next.ok()) {
        ADD_FAILURE() << "the hub sent bytes that are not frames: "
                      << next.status();
        eof = true;
        return;
      }
      if (!next->has_value()) return;
      frames.push_back(**next);
    }
  }

  std::vector<Frame> frames;  // From the hub, in order.
  size_t next = 0;            // The first not looked at yet.
  bool eof = false;           // The hub hung up (or the client did).

 private:
  UniqueFd fd_;
  channel::FrameReader reader_;
};

class ChannelHubTest : public ::testing::Test {
 protected:
  // As the supervisor does before it starts the hub: a peer that went away
  // is a write error, not a signal.
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  // Under /tmp: TEST_TMPDIR is too deep for sun_path's 108 bytes.
  void SetUp() override {
    char pattern[] = "/tmp/fcvm-hub-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << Errno("mkdtemp");
    dir_ = pattern;
  }
  void TearDown() override {
    hub_.reset();
    clients_.clear();
    agent_.reset();
    vmm_.reset();
    if (dir_.empty()) return;
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
    EXPECT_FALSE(error) << "removing " << dir_ << ": " << error.message();
  }

  std::string Path(absl::string_view name) const {
    return absl::StrCat(dir_, "/", name);
  }

  HubOptions Options(const std::string& transport = "virtio-serial") const {
    HubOptions options;
    options.transport = transport;
    options.guest_socket =
        Path(transport == "vsock" ? kVsockSocket : channel::kQemuPortSocket);
    options.vm_name = kVmName;
    // Longer than any wait of the test: an Open that is not routed fails
    // the wait, not with UNAVAILABLE.
    options.open_wait = 2 * kTimeout;
    return options;
  }

  // The hub, serving on <dir>/channel.sock as the supervisor binds it.
  void StartHub(HubOptions options) {
    absl::StatusOr<UniqueFd> listener =
        ListenUnixStream(Path(channel::kHubSocket), 0600, "the channel socket");
    ASSERT_TRUE(listener.ok()) << listener.status();
    absl::StatusOr<std::unique_ptr<ChannelHub>> hub =
        ChannelHub::Start(std::move(options), *std::move(listener));
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = *std::move(hub);
  }

  // The VMM's end of the channel: QEMU's chardev socket (or Firecracker's
  // vsock socket), listening before the hub starts.
  void ListenAsVmm(absl::string_view name = channel::kQemuPortSocket) {
    absl::StatusOr<UniqueFd> listener =
        ListenUnixStream(Path(name), 0600, "the fake VMM's socket");
    ASSERT_TRUE(listener.ok()) << listener.status();
    vmm_ = *std::move(listener);
  }

  // Accepts the hub's connection and runs a (new) agent on it.
  void AttachAgent() {
    UniqueFd fd = Accept(vmm_.get());
    ASSERT_TRUE(fd.valid());
    agent_ = std::make_unique<FakeAgent>();
    agent_->link().Attach(std::move(fd));
  }

  TestClient& Connect() {
    absl::StatusOr<UniqueFd> fd =
        ConnectUnixStream(Path(channel::kHubSocket), "the hub");
    EXPECT_TRUE(fd.ok()) << fd.status();
    clients_.push_back(
        std::make_unique<TestClient>(fd.ok() ? *std::move(fd) : UniqueFd()));
    return *clients_.back();
  }

  // Moves bytes between the hub and the test's agent and clients until
  // `done` holds; false (and a failure) when `timeout` passes first.
  bool Until(const std::function<bool()>& done,
             absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (done()) return true;
      std::vector<Peer*> peers;
      if (agent_ != nullptr) peers.push_back(agent_.get());
      for (const auto& client : clients_) peers.push_back(client.get());
      std::vector<pollfd> fds;
      std::vector<Peer*> polled;
      for (Peer* peer : peers) {
        peer->Flush();
        if (peer->fd() < 0) continue;
        fds.push_back({peer->fd(), peer->events(), 0});
        polled.push_back(peer);
      }
      if (fds.empty()) {
        ADD_FAILURE() << "waiting with no socket open";
        return false;
      }
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "nothing came within " << timeout;
        return false;
      }
      const int n = poll(fds.data(), fds.size(), MillisUntil(deadline));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ADD_FAILURE() << Errno("poll");
        return false;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents != 0) polled[i]->OnReady(fds[i].revents);
      }
    }
  }

  // The client's next frame from the hub.
  std::optional<Frame> NextFrame(TestClient& client) {
    if (!Until(
            [&] { return client.next < client.frames.size() || client.eof; }) ||
        client.next == client.frames.size()) {
      return std::nullopt;
    }
    return client.frames[client.next++];
  }
  std::string Next(TestClient& client) {
    std::optional<Frame> frame = NextFrame(client);
    return frame.has_value() ? Text(*frame)
                             : std::string("(no frame: the hub hung up)");
  }

  // The agent's next frame from the hub (seq and ack as sent).
  Frame NextForAgent() {
    if (!Until([&] { return agent_->next < agent_->frames.size(); })) {
      return Frame();
    }
    return agent_->frames[agent_->next++];
  }

  // The hub's answer to a client's Hello.
  std::string AskHello(TestClient& client) {
    client.Send(
        "hello { version: 1 role: 'client' instance: '0123456789abcdef' }");
    return Next(client);
  }

  // Once a session opened by a fresh client comes through to the agent and
  // its answer back, the hub has met the agent (its Opens waited until then).
  void AwaitAgentUp() {
    TestClient& probe = Connect();
    probe.Send("open { session: 1 stat { path: '/fcvm-ready' } }");
    const Frame open = NextForAgent();
    ASSERT_EQ(open.open().stat().path(), "/fcvm-ready") << Text(open);
    agent_->Send(absl::StrCat("stated { session: ", open.open().session(),
                              " exists: true }"));
    ASSERT_EQ(Next(probe), Text("stated { session: 1 exists: true }"));
    probe.Hangup();
  }

  // A new agent instance takes over the transport the hub holds.
  void RestartAgentOnTheSameTransport() {
    UniqueFd same(fcntl(agent_->link().fd(), F_DUPFD_CLOEXEC, 0));
    ASSERT_TRUE(same.valid()) << Errno("dup");
    const std::string old_instance = agent_->link().instance();
    agent_ = std::make_unique<FakeAgent>();
    ASSERT_NE(agent_->link().instance(), old_instance);
    agent_->link().Attach(std::move(same));
  }

  // Opens session `mine` of `client` with `argv` and returns the session's
  // id on the link, as the agent saw it in the Open.
  uint64_t OpenExec(TestClient& client, uint64_t mine, absl::string_view argv,
                    bool detach = false) {
    const std::string open =
        absl::StrCat("open { session: ", mine, " exec { argv: '", argv, "'",
                     detach ? " detach: true" : "", " } }");
    client.Send(open);
    const Frame got = NextForAgent();
    Frame want = F(open);
    want.mutable_open()->set_session(got.open().session());
    EXPECT_EQ(Text(got), Text(want));
    return got.open().session();
  }

  std::string dir_;
  UniqueFd vmm_;
  std::unique_ptr<ChannelHub> hub_;
  std::unique_ptr<FakeAgent> agent_;
  std::vector<std::unique_ptr<TestClient>> clients_;
};

TEST_F(ChannelHubTest, HelloSaysWhetherTheAgentIsUp) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  TestClient& client = Connect();
  // QEMU's socket may be connected already, but no agent said Hello.
  EXPECT_EQ(AskHello(client),
            Text("hello { version: 1 role: 'hub' agent_up: false "
                 "transport: 'virtio-serial' }"));

  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  EXPECT_EQ(AskHello(client),
            Text("hello { version: 1 role: 'hub' agent_up: true "
                 "transport: 'virtio-serial' agent_version: 'fc-agent 1.0' }"));
  EXPECT_EQ(agent_->new_peers(), 1u);
  EXPECT_THAT(agent_->garbage, ::testing::IsEmpty());
}

TEST_F(ChannelHubTest, SessionsAreRoutedBothWaysUnderEachSidesIds) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());

  const std::string kOpen =
      "open { session: $0 exec { argv: 'sh' argv: '-c' argv: 'cat' "
      "env: 'A=b' working_dir: '/srv' user: 'nobody' stdin: true tty: true "
      "size { rows: 24 cols: 80 } timeout_ms: 5000 } }";
  client.Send(absl::Substitute(kOpen, 7));
  const Frame open = NextForAgent();
  const uint64_t s = open.open().session();
  EXPECT_NE(s, 0u);
  EXPECT_NE(open.seq(), 0u) << "the link keeps it until acknowledged";
  EXPECT_EQ(Text(open), Text(absl::Substitute(kOpen, s)));

  // Agent -> client, under the client's id, without the link's seq/ack.
  const std::vector<std::string> to_client = {
      "started { session: $0 id: 'exec-3' }",
      "data { session: $0 stream: STDOUT data: 'hi\\n' }",
      "data { session: $0 stream: STDERR eof: true }",
      "credit { session: $0 bytes: 4096 }",
  };
  for (const std::string& frame : to_client) {
    agent_->Send(absl::Substitute(frame, s));
  }
  for (const std::string& frame : to_client) {
    const std::optional<Frame> got = NextFrame(client);
    ASSERT_TRUE(got.has_value()) << "waiting for " << frame;
    EXPECT_EQ(got->seq(), 0u) << got->ShortDebugString();
    EXPECT_EQ(got->ack(), 0u) << got->ShortDebugString();
    EXPECT_EQ(Text(*got), Text(absl::Substitute(frame, 7)));
  }

  // Client -> agent, under the link's id.
  const std::vector<std::string> to_agent = {
      "data { session: $0 stream: STDIN data: 'in' }",
      "data { session: $0 stream: STDIN eof: true }",
      "credit { session: $0 bytes: 3 }",
      "resize { session: $0 size { rows: 30 cols: 100 } }",
      "signal { session: $0 signal: 2 }",
  };
  for (const std::string& frame : to_agent) {
    client.Send(absl::Substitute(frame, 7));
  }
  for (const std::string& frame : to_agent) {
    EXPECT_EQ(Text(NextForAgent()), Text(absl::Substitute(frame, s)));
  }

  agent_->Send(absl::Substitute(
      "exit { session: $0 code: 130 signal: 2 message: 'interrupted' }", s));
  EXPECT_EQ(Next(client), Text("exit { session: 7 code: 130 signal: 2 "
                               "message: 'interrupted' }"));
}

TEST_F(ChannelHubTest, ExitStatedAndErrorEachEndTheirSession) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());

  // Each time: the agent ends session 5; the client's next frames for 5
  // go nowhere, and 5 can be opened again (the next Open is the agent's
  // next frame).
  const uint64_t s1 = OpenExec(client, 5, "true");
  agent_->Send(absl::Substitute("exit { session: $0 code: 0 }", s1));
  EXPECT_EQ(Next(client), Text("exit { session: 5 code: 0 }"));
  client.Send("data { session: 5 stream: STDIN data: 'late' }");

  client.Send("open { session: 5 stat { path: '/etc' } }");
  const Frame stat = NextForAgent();
  const uint64_t s2 = stat.open().session();
  EXPECT_EQ(Text(stat), Text(absl::Substitute(
                            "open { session: $0 stat { path: '/etc' } }", s2)));
  EXPECT_NE(s2, s1);
  agent_->Send(absl::Substitute(
      "stated { session: $0 exists: true directory: true mode: 493 }", s2));
  EXPECT_EQ(Next(client),
            Text("stated { session: 5 exists: true directory: true "
                 "mode: 493 }"));
  client.Send("signal { session: 5 signal: 9 }");

  const uint64_t s3 = OpenExec(client, 5, "nope");
  EXPECT_NE(s3, s2);
  agent_->Send(absl::Substitute(
      "error { session: $0 code: BAD_REQUEST message: 'no such container' }",
      s3));
  EXPECT_EQ(Next(client), Text("error { session: 5 code: BAD_REQUEST "
                               "message: 'no such container' }"));
  client.Send("close { session: 5 }");

  const uint64_t s4 = OpenExec(client, 5, "again");
  EXPECT_NE(s4, s3);
  // What the agent sends for a session that ended goes to no one.
  agent_->Send(absl::Substitute(
      "data { session: $0 stream: STDOUT data: 'stale' }", s1));
  agent_->Send(absl::Substitute("started { session: $0 }", s4));
  EXPECT_EQ(Next(client), Text("started { session: 5 }"));
}

TEST_F(ChannelHubTest, TwoClientsWithTheSameSessionIdDoNotSeeEachOther) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& a = Connect();
  TestClient& b = Connect();
  ASSERT_EQ(AskHello(a), UpHello());
  ASSERT_EQ(AskHello(b), UpHello());

  a.Send("open { session: 1 exec { argv: 'a' } }");
  b.Send("open { session: 1 exec { argv: 'b' } }");
  std::map<std::string, uint64_t> ids;  // argv -> the link's id.
  for (int i = 0; i < 2; ++i) {
    const Frame open = NextForAgent();
    ASSERT_EQ(open.open().exec().argv_size(), 1) << Text(open);
    ids[open.open().exec().argv(0)] = open.open().session();
  }
  ASSERT_EQ(ids.size(), 2u);
  const uint64_t sa = ids["a"], sb = ids["b"];
  EXPECT_NE(sa, sb);

  a.Send("data { session: 1 stream: STDIN data: 'from a' }");
  b.Send("data { session: 1 stream: STDIN data: 'from b' }");
  const std::string first = Text(NextForAgent());
  const std::string second = Text(NextForAgent());
  EXPECT_THAT(
      (std::vector<std::string>{first, second}),
      UnorderedElementsAre(
          Text(absl::Substitute(
              "data { session: $0 stream: STDIN data: 'from a' }", sa)),
          Text(absl::Substitute(
              "data { session: $0 stream: STDIN data: 'from b' }", sb))));

  // Everything else first, the Exits last: a frame routed to the wrong
  // client would come before its Exit.
  agent_->Send(
      absl::Substitute("data { session: $0 stream: STDOUT data: 'to a' }", sa));
  agent_->Send(
      absl::Substitute("data { session: $0 stream: STDOUT data: 'to b' }", sb));
  agent_->Send(absl::Substitute("started { session: $0 id: 'b' }", sb));
  agent_->Send(absl::Substitute("exit { session: $0 code: 2 }", sb));
  agent_->Send(absl::Substitute("exit { session: $0 code: 1 }", sa));
  EXPECT_EQ(Next(a), Text("data { session: 1 stream: STDOUT data: 'to a' }"));
  EXPECT_EQ(Next(a), Text("exit { session: 1 code: 1 }"));
  EXPECT_EQ(Next(b), Text("data { session: 1 stream: STDOUT data: 'to b' }"));
  EXPECT_EQ(Next(b), Text("started { session: 1 id: 'b' }"));
  EXPECT_EQ(Next(b), Text("exit { session: 1 code: 2 }"));
  // And nothing after them.
  EXPECT_EQ(AskHello(a), UpHello());
  EXPECT_EQ(AskHello(b), UpHello());
}

TEST_F(ChannelHubTest, AClientThatLeavesClosesItsSessionsButNotDetachedOnes) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& leaving = Connect();
  ASSERT_EQ(AskHello(leaving), UpHello());
  const uint64_t attached = OpenExec(leaving, 1, "sleep");
  const uint64_t detached = OpenExec(leaving, 2, "daemon", /*detach=*/true);
  const uint64_t also = OpenExec(leaving, 3, "cat");
  agent_->Send(absl::Substitute("started { session: $0 }", attached));
  agent_->Send(absl::Substitute("started { session: $0 id: 'd' }", detached));
  agent_->Send(absl::Substitute("started { session: $0 }", also));
  EXPECT_EQ(Next(leaving), Text("started { session: 1 }"));
  EXPECT_EQ(Next(leaving), Text("started { session: 2 id: 'd' }"));
  EXPECT_EQ(Next(leaving), Text("started { session: 3 }"));

  leaving.Hangup();
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute("close { session: $0 }", attached)));
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute("close { session: $0 }", also)));
  // No Close for the detached one: the next frame is another client's.
  TestClient& other = Connect();
  const uint64_t next = OpenExec(other, 1, "next");
  EXPECT_NE(next, detached);
  // The gone client's sessions' output goes nowhere.
  agent_->Send(absl::Substitute("data { session: $0 stream: STDOUT data: 'x' }",
                                detached));
  agent_->Send(absl::Substitute("exit { session: $0 }", next));
  EXPECT_EQ(Next(other), Text("exit { session: 1 }"));
}

TEST_F(ChannelHubTest, ANewAgentInstanceResetsEveryRoutedSession) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  TestClient& other = Connect();
  ASSERT_EQ(AskHello(client), UpHello());
  ASSERT_EQ(AskHello(other), UpHello());
  const uint64_t s1 = OpenExec(client, 1, "one");
  const uint64_t s2 = OpenExec(client, 2, "two");
  const uint64_t s3 = OpenExec(other, 9, "three");
  for (uint64_t s : {s1, s2, s3}) {
    agent_->Send(absl::Substitute("started { session: $0 }", s));
  }
  EXPECT_EQ(Next(client), Text("started { session: 1 }"));
  EXPECT_EQ(Next(client), Text("started { session: 2 }"));
  EXPECT_EQ(Next(other), Text("started { session: 9 }"));

  // The agent restarts behind the same transport (a virtio-serial port
  // stays open): its successor says Hello with a new instance.
  ASSERT_NO_FATAL_FAILURE(RestartAgentOnTheSameTransport());

  const std::string reset =
      "error { session: $0 code: RESET message: \"VM 'test-vm': the agent's "
      "channel restarted; the session is lost\" }";
  EXPECT_EQ(Next(client), Text(absl::Substitute(reset, 1)));
  EXPECT_EQ(Next(client), Text(absl::Substitute(reset, 2)));
  EXPECT_EQ(Next(other), Text(absl::Substitute(reset, 9)));
  EXPECT_EQ(agent_->new_peers(), 1u);

  // The lost sessions' frames go nowhere; their ids are free again, and
  // the new agent serves them.
  client.Send("data { session: 2 stream: STDIN data: 'lost' }");
  const uint64_t again = OpenExec(client, 1, "again");
  agent_->Send(absl::Substitute("started { session: $0 }", again));
  EXPECT_EQ(Next(client), Text("started { session: 1 }"));

  // Another restart resets only what the last agent ran: then nothing.
  ASSERT_NO_FATAL_FAILURE(RestartAgentOnTheSameTransport());
  EXPECT_EQ(Next(client), Text(absl::Substitute(reset, 1)));
  EXPECT_EQ(AskHello(client), UpHello());
  EXPECT_EQ(AskHello(other), UpHello());
}

TEST_F(ChannelHubTest, ANewAgentAfterAReconnectResetsSessionsToo) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());
  const uint64_t s = OpenExec(client, 3, "x");
  agent_->Send(absl::Substitute("started { session: $0 }", s));
  EXPECT_EQ(Next(client), Text("started { session: 3 }"));

  // A restored clone's agent behind a new connection.
  agent_.reset();
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  EXPECT_EQ(Next(client),
            Text("error { session: 3 code: RESET message: \"VM 'test-vm': "
                 "the agent's channel restarted; the session is lost\" }"));
}

TEST_F(ChannelHubTest, TheSameAgentAfterAReconnectKeepsItsSessions) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());
  const uint64_t s = OpenExec(client, 1, "cat");
  agent_->Send(absl::Substitute("started { session: $0 }", s));
  EXPECT_EQ(Next(client), Text("started { session: 1 }"));

  // The transport drops (a snapshot restore resets vsock): the hub
  // connects again and the same agent resumes.
  agent_->link().Detach();
  client.Send("data { session: 1 stream: STDIN data: 'meanwhile' }");
  UniqueFd fd = Accept(vmm_.get());
  ASSERT_TRUE(fd.valid());
  // Connected again, but the agent has not said Hello on it.
  EXPECT_EQ(AskHello(client),
            Text("hello { version: 1 role: 'hub' agent_up: false "
                 "transport: 'virtio-serial' agent_version: 'fc-agent 1.0' }"));
  agent_->link().Attach(std::move(fd));

  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute(
                "data { session: $0 stream: STDIN data: 'meanwhile' }", s)));
  // Met again as the same hub, never as a new one.
  EXPECT_EQ(agent_->new_peers(), 1u);
  EXPECT_THAT(agent_->peers, ::testing::Contains(true));
  agent_->Send(
      absl::Substitute("data { session: $0 stream: STDOUT data: 'back' }", s));
  EXPECT_EQ(Next(client),
            Text("data { session: 1 stream: STDOUT data: 'back' }"));
}

TEST_F(ChannelHubTest, AnOpenWaitsForTheAgentWithTheFramesAfterIt) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), DownHello());
  client.Send("open { session: 1 exec { argv: 'cat' stdin: true } }");
  client.Send("data { session: 1 stream: STDIN data: 'early' }");
  client.Send("resize { session: 1 size { rows: 2 cols: 3 } }");
  client.Send("open { session: 2 exec { argv: 'closed' } }");
  client.Send("close { session: 2 }");
  client.Send("open { session: 3 stat { path: '/x' } }");
  // A second client waits too, then leaves before the agent is up.
  TestClient& leaving = Connect();
  leaving.Send("open { session: 1 exec { argv: 'left' } }");
  ASSERT_EQ(AskHello(leaving), DownHello());
  leaving.Hangup();
  // Seen after the hub saw `leaving` go.
  ASSERT_EQ(AskHello(client), DownHello());

  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  const Frame open = NextForAgent();
  const uint64_t s1 = open.open().session();
  EXPECT_EQ(Text(open),
            Text(absl::Substitute(
                "open { session: $0 exec { argv: 'cat' stdin: true } }", s1)));
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute(
                "data { session: $0 stream: STDIN data: 'early' }", s1)));
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute(
                "resize { session: $0 size { rows: 2 cols: 3 } }", s1)));
  const Frame stat = NextForAgent();
  const uint64_t s3 = stat.open().session();
  EXPECT_EQ(Text(stat), Text(absl::Substitute(
                            "open { session: $0 stat { path: '/x' } }", s3)));
  // Neither the closed Open nor the gone client's: the next frame is one
  // sent now.
  const uint64_t s4 = OpenExec(client, 4, "now");
  EXPECT_THAT((std::vector<uint64_t>{s1, s3, s4}),
              ::testing::Each(::testing::Ne(0u)));

  agent_->Send(absl::Substitute("started { session: $0 }", s1));
  agent_->Send(absl::Substitute("stated { session: $0 }", s3));
  EXPECT_EQ(Next(client), Text("started { session: 1 }"));
  EXPECT_EQ(Next(client), Text("stated { session: 3 }"));
}

TEST_F(ChannelHubTest, AnOpenIsUnavailableOnceOpenWaitPasses) {
  // No VMM socket at all yet: the hub keeps trying.
  HubOptions options = Options();
  options.open_wait = absl::Milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(StartHub(options));
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), DownHello());

  const std::string unavailable =
      "error { session: 4 code: UNAVAILABLE message: \"VM 'test-vm': its "
      "agent's channel is not up (waited 300ms)\" }";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const absl::Time start = absl::Now();
    client.Send("open { session: 4 exec { argv: 'x' stdin: true } }");
    client.Send("data { session: 4 stream: STDIN data: 'dropped' }");
    // The second time 4 is free again: not "already in use".
    EXPECT_EQ(Next(client), Text(unavailable)) << "attempt " << attempt;
    EXPECT_GE(absl::Now() - start, options.open_wait) << "attempt " << attempt;
  }

  // When the agent comes, none of it reaches it: the first frame it gets
  // is AwaitAgentUp's Open.
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
}

TEST_F(ChannelHubTest, BytesThatAreNotFramesGetBadFrameAndAHangup) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());

  TestClient& http = Connect();
  ASSERT_EQ(AskHello(http), UpHello());
  const uint64_t s = OpenExec(http, 1, "sh");
  http.SendBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(Next(http),
            Text("error { code: BAD_FRAME message: 'bad frame: no FCV "
                 "header' }"));
  EXPECT_TRUE(Until([&] { return http.eof; }));
  EXPECT_EQ(http.next, http.frames.size()) << "frames after the Error";
  // Hanging up on it ends its sessions.
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute("close { session: $0 }", s)));

  // A header with a length over the limit.
  TestClient& huge = Connect();
  huge.SendBytes(absl::string_view("FCV\x01\xff\xff\xff\xff", 8));
  EXPECT_EQ(Next(huge),
            Text("error { code: BAD_FRAME message: 'bad frame: 4294967295 "
                 "bytes, more than the 262144 allowed' }"));
  EXPECT_TRUE(Until([&] { return huge.eof; }));

  // Others are served on.
  TestClient& fine = Connect();
  EXPECT_EQ(AskHello(fine), UpHello());
}

TEST_F(ChannelHubTest, RequestsThatCannotBeServedAreRefusedAndTheClientStays) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());
  const uint64_t s = OpenExec(client, 1, "sh");

  client.Send("open { session: 1 exec { argv: 'again' } }");
  EXPECT_EQ(Next(client),
            Text("error { session: 1 code: BAD_REQUEST message: 'a session "
                 "number already in use' }"));
  client.Send("open { session: 0 exec { argv: 'zero' } }");
  EXPECT_EQ(Next(client),
            Text("error { code: BAD_REQUEST message: 'session 0 is not a "
                 "session' }"));
  client.Send("exit { session: 1 code: 0 }");
  EXPECT_EQ(Next(client),
            Text("error { session: 1 code: BAD_REQUEST message: 'not a "
                 "message a client sends' }"));
  client.SendBytes(channel::EncodeFrame(Frame()));  // A body this end lacks.
  EXPECT_EQ(Next(client),
            Text("error { code: UNKNOWN_MESSAGE message: 'unknown message for "
                 "channel protocol 1' }"));

  // None of it reached the agent, and session 1 still runs.
  client.Send("signal { session: 1 signal: 15 }");
  EXPECT_EQ(Text(NextForAgent()),
            Text(absl::Substitute("signal { session: $0 signal: 15 }", s)));
}

TEST_F(ChannelHubTest, VsockSaysConnectAndWaitsForOk) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm(kVsockSocket));
  ASSERT_NO_FATAL_FAILURE(StartHub(Options("vsock")));
  UniqueFd fd = Accept(vmm_.get());
  ASSERT_TRUE(fd.valid());
  // As Firecracker: the request line, then "OK <host-side port>".
  EXPECT_EQ(ReadLine(fd.get()), "CONNECT 1025\n");
  ASSERT_TRUE(WriteAll(fd.get(), "OK 1073741825\n", "the hub").ok());
  agent_ = std::make_unique<FakeAgent>();
  agent_->link().Attach(std::move(fd));
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  EXPECT_EQ(AskHello(client), UpHello("vsock"));
  EXPECT_THAT(agent_->garbage, ::testing::IsEmpty());
}

TEST_F(ChannelHubTest, VsockTriesAgainWhenTheGuestDoesNotAnswer) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm(kVsockSocket));
  ASSERT_NO_FATAL_FAILURE(StartHub(Options("vsock")));
  {
    // Nobody listens on the port in the guest yet: Firecracker says
    // nothing and closes the connection.
    UniqueFd first = Accept(vmm_.get());
    ASSERT_TRUE(first.valid());
    EXPECT_EQ(ReadLine(first.get()), "CONNECT 1025\n");
  }
  UniqueFd second = Accept(vmm_.get());
  ASSERT_TRUE(second.valid());
  EXPECT_EQ(ReadLine(second.get()), "CONNECT 1025\n");
  TestClient& client = Connect();
  // The hub is not blocked on a connection: it answers while it waits.
  EXPECT_EQ(AskHello(client), DownHello("vsock"));
  ASSERT_TRUE(WriteAll(second.get(), "OK 1073741825\n", "the hub").ok());
  agent_ = std::make_unique<FakeAgent>();
  agent_->link().Attach(std::move(second));
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  const uint64_t s = OpenExec(client, 1, "uname");
  agent_->Send(
      absl::Substitute("data { session: $0 stream: STDOUT data: 'Linux' }", s));
  EXPECT_EQ(Next(client),
            Text("data { session: 1 stream: STDOUT data: 'Linux' }"));
}

TEST_F(ChannelHubTest, VsockTakesOnlyOkForAnAnswer) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm(kVsockSocket));
  ASSERT_NO_FATAL_FAILURE(StartHub(Options("vsock")));
  UniqueFd refused = Accept(vmm_.get());
  ASSERT_TRUE(refused.valid());
  EXPECT_EQ(ReadLine(refused.get()), "CONNECT 1025\n");
  ASSERT_TRUE(WriteAll(refused.get(), "NOPE\n", "the hub").ok());
  // The hub hangs up on that one (end of file, nothing sent on it) and
  // connects again.
  pollfd pfd = {refused.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, MillisUntil(absl::Now() + kTimeout)), 1);
  char byte;
  EXPECT_EQ(read(refused.get(), &byte, 1), 0);
  UniqueFd second = Accept(vmm_.get());
  ASSERT_TRUE(second.valid());
  EXPECT_EQ(ReadLine(second.get()), "CONNECT 1025\n");
  ASSERT_TRUE(WriteAll(second.get(), "OK 1073741825\n", "the hub").ok());
  agent_ = std::make_unique<FakeAgent>();
  agent_->link().Attach(std::move(second));
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
}

TEST_F(ChannelHubTest, ProbeChannelSaysWhatTheHubSays) {
  constexpr absl::Duration kProbe = absl::Seconds(5);
  ChannelStatus status = ProbeChannel(dir_, kProbe);
  EXPECT_FALSE(status.listening);
  EXPECT_FALSE(status.agent_up);

  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  status = ProbeChannel(dir_, kProbe);
  EXPECT_TRUE(status.listening);
  EXPECT_FALSE(status.agent_up);
  EXPECT_EQ(status.transport, "virtio-serial");
  EXPECT_EQ(status.agent_version, "");
  EXPECT_EQ(ChannelJson(status),
            R"({"up":false,"transport":"virtio-serial","agent":""})");

  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  status = ProbeChannel(dir_, kProbe);
  EXPECT_TRUE(status.listening);
  EXPECT_TRUE(status.agent_up);
  EXPECT_EQ(status.transport, "virtio-serial");
  EXPECT_EQ(status.agent_version, kAgentVersion);
  EXPECT_EQ(
      ChannelJson(status),
      R"({"up":true,"transport":"virtio-serial","agent":"fc-agent 1.0"})");

  // The socket file stays; nothing answers on it.
  hub_.reset();
  status = ProbeChannel(dir_, kProbe);
  EXPECT_FALSE(status.listening);
  EXPECT_FALSE(status.agent_up);
  EXPECT_EQ(status.transport, "");
}

TEST_F(ChannelHubTest, ProbeChannelGivesUpOnASocketThatDoesNotAnswer) {
  absl::StatusOr<UniqueFd> mute =
      ListenUnixStream(Path(channel::kHubSocket), 0600, "a mute socket");
  ASSERT_TRUE(mute.ok()) << mute.status();
  const absl::Time start = absl::Now();
  const ChannelStatus status = ProbeChannel(dir_, absl::Milliseconds(100));
  EXPECT_FALSE(status.listening);
  // It waited (its deadline is in whole milliseconds: a little under).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
  EXPECT_LT(absl::Now() - start, kTimeout);
}

TEST(ChannelJsonTest, EveryFieldEvenWhenFalseOrEmpty) {
  EXPECT_EQ(ChannelJson(ChannelStatus()),
            R"({"up":false,"transport":"","agent":""})");
  ChannelStatus down;
  down.listening = true;
  down.transport = "vsock";
  EXPECT_EQ(ChannelJson(down),
            R"({"up":false,"transport":"vsock","agent":""})");
  ChannelStatus up;
  up.listening = true;
  up.agent_up = true;
  up.transport = "virtio-serial";
  up.agent_version = "fc-agent \"dev\"";
  EXPECT_EQ(
      ChannelJson(up),
      R"({"up":true,"transport":"virtio-serial","agent":"fc-agent \"dev\""})");
}

TEST_F(ChannelHubTest, StoppingTheHubClosesItsClientsAndTheLink) {
  ASSERT_NO_FATAL_FAILURE(ListenAsVmm());
  ASSERT_NO_FATAL_FAILURE(StartHub(Options()));
  ASSERT_NO_FATAL_FAILURE(AttachAgent());
  ASSERT_NO_FATAL_FAILURE(AwaitAgentUp());
  TestClient& client = Connect();
  ASSERT_EQ(AskHello(client), UpHello());
  hub_.reset();
  EXPECT_TRUE(Until([&] { return client.eof && !agent_->ended.empty(); }));
  EXPECT_THAT(agent_->ended,
              ElementsAre("UNAVAILABLE: the channel's peer hung up"));
}

}  // namespace
}  // namespace fcvm::runner
