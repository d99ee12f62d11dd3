#include "channel/link.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::channel {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// A handler.peer call as End records it.
std::pair<std::string, bool> Met(absl::string_view instance, bool resumed) {
  return {std::string(instance), resumed};
}

// A connected AF_UNIX stream pair, both ends non-blocking, as the runner
// makes for vsock and virtio-serial.
std::pair<UniqueFd, UniqueFd> SocketPair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) !=
      0) {
    ADD_FAILURE() << "socketpair: " << strerror(errno);
    return {};
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Frame DataFrame(uint64_t session, absl::string_view bytes) {
  Frame frame;
  Data& data = *frame.mutable_data();
  data.set_session(session);
  data.set_stream(STDIN);
  data.set_data(std::string(bytes));
  return frame;
}

// One side of the link with everything its handler saw.
struct End {
  explicit End(std::string role) : link(role) {
    handler.frame = [this](Frame& frame) {
      if (frame.has_data()) {
        data.push_back(frame.data().data());
        seqs.push_back(frame.seq());
      } else {
        others.push_back(frame);
      }
      if (on_frame) on_frame(frame);
    };
    handler.peer = [this](const Hello& hello, bool resumed) {
      peers.emplace_back(hello.instance(), resumed);
    };
    handler.garbage = [this](const absl::Status& error) {
      garbage.push_back(error.ToString());
    };
  }

  Link link;
  Link::Handler handler;
  std::vector<std::string> data;  // Each Data frame's bytes, as delivered.
  std::vector<uint64_t> seqs;     // Their sequence numbers.
  std::vector<Frame> others;      // Frames with other bodies.
  std::vector<std::pair<std::string, bool>> peers;  // instance, resumed.
  std::vector<std::string> garbage;
  std::function<void(Frame&)> on_frame;
};

// Moves bytes both ways until `done` holds or nothing moves any more (or
// `steps` rounds passed): each round flushes both ends and reads what
// poll says is readable. Returns whether `done` held.
bool Pump(End& a, End& b, const std::function<bool()>& done = nullptr,
          int steps = 1'000'000) {
  End* ends[] = {&a, &b};
  for (int step = 0; step < steps; ++step) {
    if (done && done()) return true;
    for (End* end : ends) {
      if (!end->link.attached()) continue;
      const absl::Status flushed = end->link.Flush();
      EXPECT_TRUE(flushed.ok()) << end->link.instance() << ": " << flushed;
      if (!flushed.ok()) return false;
    }
    pollfd fds[2];
    int n = 0;
    End* polled[2];
    for (End* end : ends) {
      if (!end->link.attached()) continue;
      fds[n] = {end->link.fd(), POLLIN, 0};
      polled[n++] = end;
    }
    if (poll(fds, n, 0) < 0) {
      ADD_FAILURE() << "poll: " << strerror(errno);
      return false;
    }
    bool moved = false;
    for (int i = 0; i < n; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      moved = true;
      const absl::Status read = polled[i]->link.OnReadable(polled[i]->handler);
      if (!read.ok()) {
        // No test here ends a transport under a link that reads it.
        ADD_FAILURE() << "OnReadable: " << read;
        return false;
      }
    }
    if (!moved && !a.link.wants_write() && !b.link.wants_write()) {
      return done ? done() : true;
    }
  }
  return done ? done() : false;
}

// Attaches the two ends of a new socketpair to `a` and `b`.
void Connect(End& a, End& b) {
  auto [one, two] = SocketPair();
  a.link.Attach(std::move(one));
  b.link.Attach(std::move(two));
}

// Everything readable on `fd` now.
std::string ReadAvailable(int fd) {
  std::string out;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      out.append(buffer, n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return out;
    }
  }
}

void WriteOrFail(int fd, absl::string_view bytes) {
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
            static_cast<ssize_t>(bytes.size()));
}

// Every frame in `bytes`, which must be whole frames and nothing else.
std::vector<Frame> ParseAll(absl::string_view bytes) {
  FrameReader reader;
  reader.Feed(bytes);
  std::vector<Frame> frames;
  for (;;) {
    absl::StatusOr<std::optional<Frame>> next = reader.Next();
    if (!next.ok()) {
      ADD_FAILURE() << next.status();
      return frames;
    }
    if (!next->has_value()) break;
    frames.push_back(std::move(**next));
  }
  EXPECT_EQ(reader.buffered(), 0u) << "a partial frame at the end";
  return frames;
}

// The strings "<prefix>0" ... "<prefix>N-1".
std::vector<std::string> Numbered(absl::string_view prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(absl::StrCat(prefix, i));
  return out;
}

class LinkTest : public ::testing::Test {
 protected:
  // A write to a closed peer is an error to see, not a signal to die of.
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  // Both ends attached and up.
  void Up() {
    Connect(hub_, agent_);
    ASSERT_TRUE(Pump(hub_, agent_));
    ASSERT_TRUE(hub_.link.up());
    ASSERT_TRUE(agent_.link.up());
  }

  End hub_{"hub"};
  End agent_{"agent"};
};

TEST_F(LinkTest, HellosBringBothEndsUpAsNewPeers) {
  EXPECT_FALSE(hub_.link.attached());
  Connect(hub_, agent_);
  EXPECT_TRUE(hub_.link.attached());
  EXPECT_FALSE(hub_.link.up());
  EXPECT_FALSE(agent_.link.up());
  EXPECT_TRUE(hub_.link.wants_write());  // Its Hello.
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_TRUE(hub_.link.up());
  EXPECT_TRUE(agent_.link.up());
  // Each Hello asked for the other's; the answers that crossed them are
  // not a second meeting.
  EXPECT_THAT(hub_.peers, ElementsAre(Met(agent_.link.instance(), false)));
  EXPECT_THAT(agent_.peers, ElementsAre(Met(hub_.link.instance(), false)));
  EXPECT_NE(hub_.link.instance(), agent_.link.instance());
  EXPECT_EQ(hub_.link.instance().size(), 16u);
  EXPECT_THAT(hub_.garbage, IsEmpty());
  EXPECT_THAT(agent_.garbage, IsEmpty());
  EXPECT_THAT(hub_.others, IsEmpty());
  EXPECT_FALSE(hub_.link.wants_write());
}

TEST_F(LinkTest, TheAgentsVersionReachesTheHub) {
  Link versioned("agent", "1.2.3");
  std::string agent_version;
  hub_.handler.peer = [&](const Hello& hello, bool) {
    agent_version = hello.agent_version();
  };
  auto [one, two] = SocketPair();
  hub_.link.Attach(std::move(one));
  versioned.Attach(std::move(two));
  ASSERT_TRUE(versioned.Flush().ok());
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  EXPECT_EQ(agent_version, "1.2.3");
}

TEST_F(LinkTest, FramesEachWayArriveInOrderExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(Up());
  for (int i = 0; i < 50; ++i) {
    hub_.link.Send(DataFrame(1, absl::StrCat("in ", i)));
    agent_.link.Send(DataFrame(1, absl::StrCat("out ", i)));
    if (i % 7 == 0) Pump(hub_, agent_, nullptr, 2);  // Some on the way.
  }
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_EQ(agent_.data, Numbered("in ", 0, 50));
  EXPECT_EQ(hub_.data, Numbered("out ", 0, 50));
  std::vector<uint64_t> seqs;
  for (uint64_t s = 1; s <= 50; ++s) seqs.push_back(s);
  EXPECT_EQ(agent_.seqs, seqs);
  EXPECT_EQ(hub_.seqs, seqs);
}

TEST_F(LinkTest, AcksFreeTheSendersFramesAfterARoundTrip) {
  ASSERT_NO_FATAL_FAILURE(Up());
  hub_.link.Send(DataFrame(1, "a"));
  hub_.link.Send(DataFrame(1, "b"));
  hub_.link.Send(DataFrame(1, "c"));
  EXPECT_EQ(hub_.link.unacked(), 3u);
  ASSERT_TRUE(hub_.link.Flush().ok());
  ASSERT_TRUE(agent_.link.OnReadable(agent_.handler).ok());
  EXPECT_EQ(agent_.data, (std::vector<std::string>{"a", "b", "c"}));
  // The agent's bare ack is written, not yet read.
  EXPECT_TRUE(agent_.link.wants_write());
  ASSERT_TRUE(agent_.link.Flush().ok());
  EXPECT_EQ(hub_.link.unacked(), 3u);
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  EXPECT_EQ(hub_.link.unacked(), 0u);
  // A bare ack is delivered to no one and not acked itself.
  EXPECT_THAT(hub_.others, IsEmpty());
  EXPECT_FALSE(hub_.link.wants_write());
  EXPECT_EQ(agent_.link.unacked(), 0u);
}

TEST_F(LinkTest, AnAnswerCarriesTheAckSoNoBareAckIsSent) {
  auto [mine, theirs] = SocketPair();
  hub_.link.Attach(std::move(mine));
  hub_.on_frame = [this](Frame& frame) {
    Frame credit;
    credit.mutable_credit()->set_session(frame.data().session());
    credit.mutable_credit()->set_bytes(frame.data().data().size());
    hub_.link.Send(std::move(credit));
  };
  Frame hello;
  hello.mutable_hello()->set_version(kProtocolVersion);
  hello.mutable_hello()->set_role("agent");
  hello.mutable_hello()->set_instance("0123456789abcdef");
  hello.mutable_hello()->set_reply(true);
  Frame data = DataFrame(4, "12345");
  data.set_seq(1);
  WriteOrFail(theirs.get(), EncodeFrame(hello) + EncodeFrame(data));
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  ASSERT_TRUE(hub_.link.Flush().ok());
  EXPECT_THAT(hub_.data, ElementsAre("12345"));

  const std::vector<Frame> got = ParseAll(ReadAvailable(theirs.get()));
  ASSERT_EQ(got.size(), 3u);  // Its Hello, the answer to ours, the Credit.
  EXPECT_TRUE(got[0].hello().reply());
  EXPECT_FALSE(got[1].hello().reply());
  EXPECT_EQ(got[1].hello().peer_instance(), "0123456789abcdef");
  ASSERT_TRUE(got[2].has_credit());
  EXPECT_EQ(got[2].credit().bytes(), 5u);
  EXPECT_EQ(got[2].seq(), 1u);
  EXPECT_EQ(got[2].ack(), 1u);
  EXPECT_EQ(hub_.link.unacked(), 1u);
}

TEST_F(LinkTest, BothWaysAtOnceThroughFullBuffersEveryFrameIsAcked) {
  ASSERT_NO_FATAL_FAILURE(Up());
  const std::string chunk(kMaxDataBytes, 'x');
  for (int i = 0; i < 24; ++i) {
    hub_.link.Send(DataFrame(1, chunk));
    agent_.link.Send(DataFrame(1, chunk));
  }
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_EQ(hub_.data.size(), 24u);
  EXPECT_EQ(agent_.data.size(), 24u);
  // Output waiting when the last frames came does not hold back their ack.
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_EQ(agent_.link.unacked(), 0u);
}

TEST_F(LinkTest, ATransportResetLosesNothingAndRepeatsNothing) {
  ASSERT_NO_FATAL_FAILURE(Up());
  for (int i = 0; i < 3; ++i) {
    hub_.link.Send(DataFrame(1, absl::StrCat("in ", i)));
    agent_.link.Send(DataFrame(1, absl::StrCat("out ", i)));
  }
  ASSERT_TRUE(Pump(hub_, agent_));
  ASSERT_EQ(agent_.data, Numbered("in ", 0, 3));
  // Written into the socket, never read: the socket goes with them in it.
  for (int i = 3; i < 6; ++i) {
    hub_.link.Send(DataFrame(1, absl::StrCat("in ", i)));
    agent_.link.Send(DataFrame(1, absl::StrCat("out ", i)));
  }
  ASSERT_TRUE(hub_.link.Flush().ok());
  ASSERT_TRUE(agent_.link.Flush().ok());
  EXPECT_FALSE(hub_.link.wants_write());
  hub_.link.Detach();
  agent_.link.Detach();
  EXPECT_FALSE(hub_.link.attached());
  EXPECT_FALSE(hub_.link.up());
  EXPECT_EQ(hub_.link.unacked(), 3u);
  EXPECT_EQ(agent_.link.unacked(), 3u);
  // Sent while detached.
  for (int i = 6; i < 8; ++i) {
    hub_.link.Send(DataFrame(1, absl::StrCat("in ", i)));
    agent_.link.Send(DataFrame(1, absl::StrCat("out ", i)));
  }
  EXPECT_FALSE(hub_.link.wants_write());
  EXPECT_EQ(hub_.link.unacked(), 5u);

  Connect(hub_, agent_);
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_TRUE(hub_.link.up());
  EXPECT_TRUE(agent_.link.up());
  EXPECT_THAT(hub_.peers, ElementsAre(Met(agent_.link.instance(), false),
                                      Met(agent_.link.instance(), true)));
  EXPECT_THAT(agent_.peers, ElementsAre(Met(hub_.link.instance(), false),
                                        Met(hub_.link.instance(), true)));
  EXPECT_EQ(agent_.data, Numbered("in ", 0, 8));
  EXPECT_EQ(hub_.data, Numbered("out ", 0, 8));
  EXPECT_EQ(agent_.seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_EQ(agent_.link.unacked(), 0u);
  EXPECT_THAT(hub_.garbage, IsEmpty());
  EXPECT_THAT(agent_.garbage, IsEmpty());
  // And the link goes on from there.
  hub_.link.Send(DataFrame(1, "in 8"));
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_EQ(agent_.data, Numbered("in ", 0, 9));
}

TEST_F(LinkTest, AResetWithTheFdKeptLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(Up());
  hub_.link.Send(DataFrame(1, "in 0"));
  agent_.link.Send(DataFrame(1, "out 0"));
  ASSERT_TRUE(Pump(hub_, agent_));
  // In the agent's input when its port's host side goes: frames from the
  // hub, then the garbage a half-gone host leaves.
  hub_.link.Send(DataFrame(1, "in 1"));
  hub_.link.Send(DataFrame(1, "in 2"));
  ASSERT_TRUE(hub_.link.Flush().ok());
  WriteOrFail(hub_.link.fd(), "\x17garbage from a host that went away FCV");
  // Queued in the agent, not written yet: dropped now, sent after the Hello.
  agent_.link.Send(DataFrame(1, "out 1"));
  EXPECT_TRUE(agent_.link.wants_write());
  agent_.link.Reset();
  EXPECT_TRUE(agent_.link.attached());
  EXPECT_FALSE(agent_.link.up());
  EXPECT_EQ(agent_.link.unacked(), 1u);
  hub_.link.Send(DataFrame(1, "in 3"));

  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_TRUE(agent_.link.up());
  EXPECT_TRUE(hub_.link.up());
  EXPECT_EQ(agent_.data, Numbered("in ", 0, 4));
  EXPECT_EQ(agent_.seqs, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(hub_.data, Numbered("out ", 0, 2));
  EXPECT_THAT(agent_.peers, ElementsAre(Met(hub_.link.instance(), false),
                                        Met(hub_.link.instance(), true)));
  EXPECT_THAT(hub_.peers, ElementsAre(Met(agent_.link.instance(), false),
                                      Met(agent_.link.instance(), true)));
  // Skipped while resynchronising, as Reset() asked: not garbage to report.
  EXPECT_THAT(agent_.garbage, IsEmpty());
  EXPECT_THAT(hub_.garbage, IsEmpty());
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_EQ(agent_.link.unacked(), 0u);
}

TEST_F(LinkTest, AResetWithAFramePartlyWrittenKeepsTheStreamWhole) {
  ASSERT_NO_FATAL_FAILURE(Up());
  // More than the socket holds: the last Flush stops inside a frame.
  const std::string chunk(kMaxDataBytes, 'y');
  for (int i = 0; i < 16; ++i) agent_.link.Send(DataFrame(1, chunk));
  ASSERT_TRUE(agent_.link.Flush().ok());
  ASSERT_TRUE(agent_.link.wants_write());
  agent_.link.Reset();

  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_TRUE(agent_.link.up());
  EXPECT_TRUE(hub_.link.up());
  EXPECT_EQ(hub_.data.size(), 16u);
  EXPECT_EQ(hub_.seqs.back(), 16u);
  EXPECT_THAT(hub_.garbage, IsEmpty());
  EXPECT_EQ(agent_.link.unacked(), 0u);
}

TEST_F(LinkTest, ANewPeerStartsAfreshAndTheOldPeersFramesAreDropped) {
  ASSERT_NO_FATAL_FAILURE(Up());
  const std::string old_agent = agent_.link.instance();
  hub_.link.Send(DataFrame(1, "for the old agent 0"));
  hub_.link.Send(DataFrame(1, "for the old agent 1"));
  ASSERT_TRUE(hub_.link.Flush().ok());
  hub_.link.Detach();
  agent_.link.Detach();
  hub_.link.Send(DataFrame(1, "for the old agent 2"));
  EXPECT_EQ(hub_.link.unacked(), 3u);

  End agent("agent");  // Restarted: a new instance.
  size_t unacked_when_met = 99;
  hub_.handler.peer = [&](const Hello& hello, bool resumed) {
    hub_.peers.emplace_back(hello.instance(), resumed);
    unacked_when_met = hub_.link.unacked();
  };
  Connect(hub_, agent);
  ASSERT_TRUE(Pump(hub_, agent));
  EXPECT_TRUE(agent.link.up());
  EXPECT_THAT(hub_.peers, ElementsAre(Met(old_agent, false),
                                      Met(agent.link.instance(), false)));
  EXPECT_THAT(agent.peers, ElementsAre(Met(hub_.link.instance(), false)));
  EXPECT_EQ(unacked_when_met, 0u);
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_THAT(agent.data, IsEmpty());
  // Numbering starts again for the new peer.
  hub_.link.Send(DataFrame(1, "for the new agent"));
  ASSERT_TRUE(Pump(hub_, agent));
  EXPECT_THAT(agent.data, ElementsAre("for the new agent"));
  EXPECT_THAT(agent.seqs, ElementsAre(1u));
}

TEST_F(LinkTest, AHelloOfAnotherVersionIsAnsweredWithAVersionError) {
  auto [mine, theirs] = SocketPair();
  hub_.link.Attach(std::move(mine));
  Frame hello;
  hello.mutable_hello()->set_version(2);
  hello.mutable_hello()->set_role("agent");
  hello.mutable_hello()->set_instance("0123456789abcdef");
  hello.mutable_hello()->set_reply(true);
  WriteOrFail(theirs.get(), EncodeFrame(hello));
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  ASSERT_TRUE(hub_.link.Flush().ok());
  EXPECT_FALSE(hub_.link.up());
  EXPECT_THAT(hub_.peers, IsEmpty());

  const std::vector<Frame> got = ParseAll(ReadAvailable(theirs.get()));
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[0].has_hello());
  EXPECT_EQ(got[0].hello().version(), kProtocolVersion);
  EXPECT_EQ(got[0].hello().role(), "hub");
  EXPECT_EQ(got[0].hello().instance(), hub_.link.instance());
  EXPECT_TRUE(got[0].hello().reply());
  ASSERT_TRUE(got[1].has_error());
  EXPECT_EQ(got[1].seq(), 0u);
  EXPECT_EQ(got[1].error().session(), 0u);
  EXPECT_EQ(got[1].error().code(), Error::VERSION);
  EXPECT_EQ(got[1].error().message(), "hub speaks channel protocol 1, not 2");
  EXPECT_EQ(hub_.link.unacked(), 0u);  // Not kept for a resend.

  // A Hello of our version afterwards is taken.
  hello.mutable_hello()->set_version(kProtocolVersion);
  WriteOrFail(theirs.get(), EncodeFrame(hello));
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  EXPECT_TRUE(hub_.link.up());
  EXPECT_THAT(hub_.peers, ElementsAre(Met("0123456789abcdef", false)));
}

TEST_F(LinkTest, GarbageIsReportedAndThePeerResetsThenTrafficFlowsAgain) {
  ASSERT_NO_FATAL_FAILURE(Up());
  hub_.link.Send(DataFrame(1, "in 0"));
  agent_.link.Send(DataFrame(1, "out 0"));
  ASSERT_TRUE(Pump(hub_, agent_));
  // Bytes on the agent's side of the stream that are no frame.
  WriteOrFail(agent_.link.fd(), "this is not a frame");
  agent_.link.Send(DataFrame(1, "out 1"));  // Skipped, then sent again.
  hub_.link.Send(DataFrame(1, "in 1"));
  ASSERT_TRUE(Pump(hub_, agent_));

  EXPECT_THAT(hub_.garbage, ElementsAre("DATA_LOSS: bad frame: no FCV header"));
  EXPECT_THAT(agent_.garbage,
              ElementsAre("DATA_LOSS: hub: bad frame: no FCV header; skipping "
                          "to the next Hello"));
  EXPECT_THAT(agent_.peers, ElementsAre(Met(hub_.link.instance(), false),
                                        Met(hub_.link.instance(), true)));
  EXPECT_THAT(hub_.peers, ElementsAre(Met(agent_.link.instance(), false),
                                      Met(agent_.link.instance(), true)));
  EXPECT_TRUE(hub_.link.up());
  EXPECT_TRUE(agent_.link.up());
  EXPECT_THAT(hub_.others, IsEmpty());  // The BAD_FRAME is the link's own.
  EXPECT_THAT(agent_.others, IsEmpty());

  hub_.link.Send(DataFrame(1, "in 2"));
  agent_.link.Send(DataFrame(1, "out 2"));
  ASSERT_TRUE(Pump(hub_, agent_));
  EXPECT_EQ(agent_.data, Numbered("in ", 0, 3));
  EXPECT_EQ(hub_.data, Numbered("out ", 0, 3));
  EXPECT_EQ(hub_.seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_EQ(agent_.link.unacked(), 0u);
}

TEST_F(LinkTest, RepeatedHellosDoNotPileUpCopiesOfTheUnackedFrames) {
  auto [mine, theirs] = SocketPair();
  hub_.link.Attach(std::move(mine));
  Frame hello;
  hello.mutable_hello()->set_version(kProtocolVersion);
  hello.mutable_hello()->set_role("agent");
  hello.mutable_hello()->set_instance("0123456789abcdef");
  WriteOrFail(theirs.get(), EncodeFrame(hello));
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  ASSERT_TRUE(hub_.link.up());
  for (int i = 0; i < 3; ++i) hub_.link.Send(DataFrame(1, "unacked"));
  ASSERT_TRUE(hub_.link.Flush().ok());
  ASSERT_EQ(ParseAll(ReadAvailable(theirs.get())).size(), 4u);  // Hello, 3.

  // A peer that says Hello again and again but never reads.
  hello.mutable_hello()->set_peer_instance(hub_.link.instance());
  hello.mutable_hello()->set_reply(true);
  std::string hellos;
  for (int i = 0; i < 100; ++i) hellos += EncodeFrame(hello);
  WriteOrFail(theirs.get(), hellos);
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  ASSERT_TRUE(hub_.link.Flush().ok());
  EXPECT_EQ(hub_.peers.size(), 101u);
  // What is still unwritten when the next Hello comes is stale: one answer
  // and one copy of the frames are enough.
  const std::vector<Frame> got = ParseAll(ReadAvailable(theirs.get()));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(got[0].has_hello());
  EXPECT_FALSE(got[0].hello().reply());
  EXPECT_EQ(got[1].seq(), 1u);
  EXPECT_EQ(got[3].seq(), 3u);
}

TEST_F(LinkTest, AHelloThatDropsOursUnwrittenIsAnsweredUnasked) {
  auto [mine, theirs] = SocketPair();
  hub_.link.Attach(std::move(mine));
  // Two peers, one after the other, before the hub wrote anything; neither
  // asks for an answer.
  Frame first;
  first.mutable_hello()->set_version(kProtocolVersion);
  first.mutable_hello()->set_instance("first-instance-0");
  Frame second = first;
  second.mutable_hello()->set_instance("other-instance-1");
  WriteOrFail(theirs.get(), EncodeFrame(first) + EncodeFrame(second));
  ASSERT_TRUE(hub_.link.OnReadable(hub_.handler).ok());
  ASSERT_TRUE(hub_.link.Flush().ok());
  EXPECT_THAT(hub_.peers, ElementsAre(Met("first-instance-0", false),
                                      Met("other-instance-1", false)));
  // The Hello from Attach was dropped with the rest unwritten; the second
  // peer still hears from the hub before anything else.
  const std::vector<Frame> got = ParseAll(ReadAvailable(theirs.get()));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].has_hello());
  EXPECT_EQ(got[0].hello().instance(), hub_.link.instance());
  EXPECT_EQ(got[0].hello().peer_instance(), "other-instance-1");
  EXPECT_FALSE(got[0].hello().reply());
}

TEST_F(LinkTest, FiveMegabytesThroughResetsArriveByteExact) {
  ASSERT_NO_FATAL_FAILURE(Up());
  constexpr int kFrames = 80;  // 80 * 64 KiB = 5 MiB.
  std::mt19937 random(42);
  std::string sent;
  for (int i = 0; i < kFrames; ++i) {
    std::string chunk(kMaxDataBytes, '\0');
    for (char& c : chunk) c = static_cast<char>(random());
    sent += chunk;
    hub_.link.Send(DataFrame(1, chunk));
  }
  // A transport reset after a quarter, a Reset() of the sender (its output
  // cut inside a frame) after half.
  ASSERT_TRUE(
      Pump(hub_, agent_, [&] { return agent_.data.size() >= kFrames / 4; }));
  hub_.link.Detach();
  agent_.link.Detach();
  Connect(hub_, agent_);
  ASSERT_TRUE(
      Pump(hub_, agent_, [&] { return agent_.data.size() >= kFrames / 2; }));
  ASSERT_TRUE(hub_.link.wants_write());
  hub_.link.Reset();
  ASSERT_TRUE(Pump(hub_, agent_));

  EXPECT_EQ(agent_.data.size(), static_cast<size_t>(kFrames));
  std::string received;
  for (const std::string& chunk : agent_.data) received += chunk;
  ASSERT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "the bytes differ";
  std::vector<uint64_t> seqs;
  for (uint64_t s = 1; s <= kFrames; ++s) seqs.push_back(s);
  EXPECT_EQ(agent_.seqs, seqs);
  EXPECT_EQ(hub_.link.unacked(), 0u);
  EXPECT_THAT(agent_.garbage, IsEmpty());
  EXPECT_THAT(hub_.garbage, IsEmpty());
  EXPECT_EQ(agent_.peers.size(), 3u);
}

}  // namespace
}  // namespace fcvm::channel
