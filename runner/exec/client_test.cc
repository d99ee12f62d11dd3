#include "runner/exec/client.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "channel/frame.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/exec/testing/fake_hub.h"

namespace fcvm::runner::exec {
namespace {

using channel::Frame;
using testing::FakeHub;
using ::testing::HasSubstr;

class ClientTest : public ::testing::Test {
 protected:
  // Under /tmp: TEST_TMPDIR is too deep for sun_path's 108 bytes.
  void SetUp() override {
    char pattern[] = "/tmp/fcvm-exec-client-test.XXXXXX";
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

  static channel::Open ExecOpen(std::vector<std::string> argv) {
    channel::Open open;
    for (std::string& arg : argv) open.mutable_exec()->add_argv(arg);
    return open;
  }

  // Serves exec sessions with `exits`, one each, in order.
  static FakeHub::Serve Exits(std::vector<channel::Exit> exits) {
    return [exits](FakeHub::Connection& hub) {
      for (const channel::Exit& exit : exits) {
        std::optional<Frame> open = hub.Next();
        ASSERT_TRUE(open.has_value() && open->has_open());
        const uint64_t id = open->open().session();
        hub.Started(id, absl::StrCat("s-", id));
        hub.Finish(id, exit);
      }
      EXPECT_FALSE(hub.Next().has_value());  // The client hangs up.
    };
  }

  std::string dir_;
};

channel::Exit MakeExit(int code, int signal = 0, bool timed_out = false,
                       const std::string& message = "") {
  channel::Exit exit;
  exit.set_code(code);
  exit.set_signal(signal);
  exit.set_timed_out(timed_out);
  exit.set_message(message);
  return exit;
}

TEST_F(ClientTest, HellosAreExchanged) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  {
    std::unique_ptr<HubClient> client = Connect();
    ASSERT_NE(client, nullptr);
    EXPECT_TRUE(client->hello().agent_up);
    EXPECT_EQ(client->hello().transport, "vsock");
    EXPECT_EQ(client->hello().agent_version, "fake-agent 1");
    // The fake records the client's Hello before it answers.
    const channel::Hello hello = (*hub)->client_hello();
    EXPECT_EQ(hello.role(), "client");
    EXPECT_EQ(hello.version(), channel::kProtocolVersion);
    EXPECT_EQ(hello.instance().size(), 16u);
  }
}

TEST_F(ClientTest, NoSocketSaysTheVmHasNoChannel) {
  absl::StatusOr<std::unique_ptr<HubClient>> client =
      HubClient::Connect(dir_, "web");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.status().message(),
            "VM 'web' has no control channel (it is not running, or was "
            "started by an fcvm without one)");
  EXPECT_TRUE(IsChannelError(client.status()));
}

TEST_F(ClientTest, RefusedConnectionSaysNothingListens) {
  // A socket file nobody listens on: what a killed supervisor leaves.
  const std::string path = dir_ + "/channel.sock";
  {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, path.size());
    ASSERT_EQ(
        bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)),
        0);
  }
  absl::StatusOr<std::unique_ptr<HubClient>> client =
      HubClient::Connect(dir_, "web");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      client.status().message(),
      absl::StrCat("VM 'web' has no control channel (nothing listens "
                   "on ",
                   path, ": its supervisor is gone, or it is not running)"));
  EXPECT_TRUE(IsChannelError(client.status()));
}

TEST_F(ClientTest, SilentHubTimesOut) {
  // Listening, never accepting: connect succeeds, no Hello ever comes.
  absl::StatusOr<UniqueFd> listener =
      ListenUnixStream(dir_ + "/channel.sock", 0600, "silent hub");
  ASSERT_TRUE(listener.ok()) << listener.status();
  HubOptions options;
  options.hello_timeout = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<HubClient>> client =
      HubClient::Connect(dir_, "web", options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client.status().message(),
            "VM 'web': its control channel did not answer our Hello within "
            "100ms");
}

TEST_F(ClientTest, ExitsArePassedThrough) {
  const std::vector<channel::Exit> exits = {
      MakeExit(0),
      MakeExit(3),
      MakeExit(126, 0, false, "not executable"),
      MakeExit(127),
      MakeExit(137, 9, false, "killed by signal 9 (Killed)"),
      MakeExit(137, 9, true, "timed out after 1s: killed 2 processes")};
  auto hub = FakeHub::Start(dir_, Exits(exits));
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  for (size_t i = 0; i < exits.size(); ++i) {
    absl::StatusOr<std::unique_ptr<Session>> session =
        client->Open(ExecOpen({"true"}));
    ASSERT_TRUE(session.ok()) << session.status();
    EXPECT_EQ((*session)->id(), i + 1);
    absl::StatusOr<channel::Exit> exit = (*session)->WaitExit();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(exit->code(), exits[i].code());
    EXPECT_EQ(exit->signal(), exits[i].signal());
    EXPECT_EQ(exit->timed_out(), exits[i].timed_out());
    EXPECT_EQ(exit->message(), exits[i].message());
    EXPECT_EQ((*session)->started_id(), absl::StrCat("s-", i + 1));
  }
}

TEST_F(ClientTest, AnErrorFrameEndsTheSessionWithAStatus) {
  FakeHub::Options options;
  options.agent_up = false;
  auto hub = FakeHub::Start(
      dir_,
      [](FakeHub::Connection& hub) {
        std::optional<Frame> open = hub.Next();
        ASSERT_TRUE(open.has_value() && open->has_open());
        hub.Error(open->open().session(), channel::Error::UNAVAILABLE,
                  "the agent did not come up within 30 s");
        EXPECT_FALSE(hub.Next().has_value());
      },
      options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->hello().agent_up);
  absl::StatusOr<std::unique_ptr<Session>> session =
      client->Open(ExecOpen({"true"}));
  ASSERT_TRUE(session.ok()) << session.status();
  absl::StatusOr<channel::Exit> exit = (*session)->WaitExit();
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(exit.status().message(),
            "VM 'web': the agent did not come up within 30 s");
  EXPECT_TRUE(IsChannelError(exit.status()));
}

TEST_F(ClientTest, LinkErrorsAreWarningsAndUnknownFramesAreAnswered) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    hub.Error(0, channel::Error::BAD_FRAME, "garbage from the agent");
    hub.Send(Frame());  // A body this client cannot know.
    std::optional<Frame> answer = hub.Next();
    ASSERT_TRUE(answer.has_value());
    EXPECT_TRUE(answer->has_error());
    EXPECT_EQ(answer->error().session(), 0u);
    EXPECT_EQ(answer->error().code(), channel::Error::UNKNOWN_MESSAGE);
    hub.Finish(open->open().session(), MakeExit(5));
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::vector<std::string> warnings;
  HubOptions options;
  options.warn = [&warnings](const std::string& w) { warnings.push_back(w); };
  absl::StatusOr<std::unique_ptr<HubClient>> client =
      HubClient::Connect(dir_, "web", options);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::unique_ptr<Session>> session =
      (*client)->Open(ExecOpen({"true"}));
  ASSERT_TRUE(session.ok()) << session.status();
  absl::StatusOr<channel::Exit> exit = (*session)->WaitExit();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code(), 5);
  EXPECT_THAT(warnings,
              ::testing::ElementsAre(
                  "VM 'web': control channel: garbage from the agent"));
}

TEST_F(ClientTest, HangUpMidSessionIsAClearError) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    hub.Started(open->open().session(), "s-1");
    hub.SendData(open->open().session(), channel::STDOUT, "partial");
    // Returning closes the connection: the supervisor died.
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::unique_ptr<Session>> session =
      client->Open(ExecOpen({"sleep", "1000"}));
  ASSERT_TRUE(session.ok()) << session.status();
  // What came before the hang-up is still delivered.
  absl::StatusOr<std::optional<channel::Data>> data = (*session)->NextOutput();
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_TRUE(data->has_value());
  EXPECT_EQ((*data)->data(), "partial");
  absl::StatusOr<channel::Exit> exit = (*session)->WaitExit();
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(exit.status().message(),
            "VM 'web': the control channel closed (the VM's supervisor "
            "stopped or restarted)");
  EXPECT_TRUE(IsChannelError(exit.status()));
  // And so is everything after it.
  absl::StatusOr<std::unique_ptr<Session>> again =
      client->Open(ExecOpen({"true"}));
  EXPECT_EQ(again.status(), exit.status());
}

TEST_F(ClientTest, WriteStdinWaitsForCredit) {
  const size_t total = 3 * channel::kWindowBytes + 12345;
  std::string input(total, '\0');
  for (size_t i = 0; i < total; ++i)
    input[i] = static_cast<char>(i * 7 + i / 991);
  std::string received;
  bool eof = false;
  auto hub = FakeHub::Start(dir_, [&](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    const uint64_t id = open->open().session();
    EXPECT_TRUE(open->open().exec().stdin());
    bool pinged = false;
    while (!eof) {
      std::optional<Frame> frame = hub.Next();
      ASSERT_TRUE(frame.has_value());
      if (frame->has_error()) {
        // The ping's answer: everything sent before it has been counted.
        ASSERT_TRUE(pinged);
        pinged = false;
        hub.Credit(id, hub.uncredited_stdin(id));
        continue;
      }
      ASSERT_TRUE(frame->has_data()) << frame->DebugString();
      received += frame->data().data();
      eof = frame->data().eof();
      // Credit only once the whole window is spent and the client has
      // shown it stopped there: a frame it cannot know (an empty one) is
      // answered in order, after any STDIN it sent first, which the fake
      // then counts as beyond the credit.
      if (hub.uncredited_stdin(id) == channel::kWindowBytes && !pinged) {
        hub.Send(Frame());
        pinged = true;
      }
    }
    hub.Finish(id, MakeExit(0));
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  channel::Open open = ExecOpen({"cat"});
  open.mutable_exec()->set_stdin(true);
  absl::StatusOr<std::unique_ptr<Session>> session = client->Open(open);
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->WriteStdin(input).ok());
  ASSERT_TRUE((*session)->CloseStdin().ok());
  absl::StatusOr<channel::Exit> exit = (*session)->WaitExit();
  ASSERT_TRUE(exit.ok()) << exit.status();
  session->reset();
  client.reset();
  hub->reset();
  EXPECT_TRUE(eof);
  EXPECT_EQ(received.size(), input.size());
  EXPECT_TRUE(received == input);
}

TEST_F(ClientTest, SendStdinRefusesMoreThanTheCredit) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    while (hub.Next().has_value()) {
    }
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::unique_ptr<Session>> session =
      client->Open(ExecOpen({"cat"}));
  ASSERT_TRUE(session.ok()) << session.status();
  const absl::Status sent =
      (*session)->SendStdin(std::string(channel::kWindowBytes + 1, 'x'));
  EXPECT_EQ(sent.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*session)->stdin_credit(), channel::kWindowBytes);
}

TEST_F(ClientTest, StatIsAnsweredByStated) {
  auto hub = FakeHub::Start(dir_, [](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    EXPECT_EQ(open->open().stat().path(), "/srv");
    Frame stated;
    stated.mutable_stated()->set_session(open->open().session());
    stated.mutable_stated()->set_exists(true);
    stated.mutable_stated()->set_directory(true);
    stated.mutable_stated()->set_mode(040755);
    hub.Send(stated);
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  channel::Open open;
  open.mutable_stat()->set_path("/srv");
  absl::StatusOr<std::unique_ptr<Session>> session = client->Open(open);
  ASSERT_TRUE(session.ok()) << session.status();
  absl::StatusOr<channel::Stated> stated = (*session)->WaitStated();
  ASSERT_TRUE(stated.ok()) << stated.status();
  EXPECT_TRUE(stated->exists());
  EXPECT_TRUE(stated->directory());
  EXPECT_EQ(stated->mode(), 040755u);
  EXPECT_EQ((*session)->WaitExit().status().code(),
            absl::StatusCode::kInternal);
}

TEST_F(ClientTest, DroppingALiveSessionClosesIt) {
  std::optional<Frame> closed;
  auto hub = FakeHub::Start(dir_, [&closed](FakeHub::Connection& hub) {
    std::optional<Frame> open = hub.Next();
    ASSERT_TRUE(open.has_value() && open->has_open());
    hub.Started(open->open().session(), "s-1");
    closed = hub.Next();
    EXPECT_FALSE(hub.Next().has_value());
  });
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::unique_ptr<HubClient> client = Connect();
  ASSERT_NE(client, nullptr);
  {
    absl::StatusOr<std::unique_ptr<Session>> session =
        client->Open(ExecOpen({"sleep", "1000"}));
    ASSERT_TRUE(session.ok()) << session.status();
  }
  client.reset();
  hub->reset();
  ASSERT_TRUE(closed.has_value());
  EXPECT_TRUE(closed->has_close());
  EXPECT_EQ(closed->close().session(), 1u);
}

}  // namespace
}  // namespace fcvm::runner::exec
