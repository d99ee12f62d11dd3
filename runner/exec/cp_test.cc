#include "runner/exec/cp.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "channel/frame.h"
#include "gtest/gtest.h"
#include "runner/exec/client.h"
#include "runner/exec/copy.h"
#include "runner/exec/testing/fake_hub.h"

namespace fcvm::runner::exec {
namespace {

using channel::Frame;
using testing::FakeHub;

TEST(ParseCpArgsTest, FollowsPodman) {
  absl::StatusOr<CpArgs> out = ParseCpArgs("web:/etc/hosts", "/tmp/h");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->vm, "web");
  EXPECT_FALSE(out->to_vm);
  EXPECT_EQ(out->vm_path, "/etc/hosts");
  EXPECT_EQ(out->host_path, "/tmp/h");

  // '.' or '/' first: a host path, colon or not; container paths are
  // relative to the root.
  absl::StatusOr<CpArgs> in = ParseCpArgs("./a:b", "web:srv/x");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE(in->to_vm);
  EXPECT_EQ(in->vm_path, "/srv/x");
  EXPECT_EQ(in->host_path, "./a:b");

  absl::StatusOr<CpArgs> tar = ParseCpArgs("-", "web:/srv");
  ASSERT_TRUE(tar.ok()) << tar.status();
  EXPECT_EQ(tar->host_path, "-");
  EXPECT_TRUE(tar->to_vm);

  EXPECT_EQ(ParseCpArgs("a:/x", "b:/y").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCpArgs("/x", "./y").status().message(),
            "cp: one side must be NAME:PATH, a path in VM NAME's container "
            "(cp NAME:PATH HOST_PATH, cp HOST_PATH NAME:PATH)");
  EXPECT_EQ(ParseCpArgs("web:/x", "web:/y").status().message(),
            "cp: copying between two VMs is not supported: give NAME:PATH on "
            "exactly one side (cp NAME:PATH HOST_PATH, cp HOST_PATH "
            "NAME:PATH)");
}

// The agent's `podman cp CTR:PATH -`: a tar on STDOUT.
class StdoutSink : public ByteSink {
 public:
  StdoutSink(FakeHub::Connection& hub, uint64_t id) : hub_(hub), id_(id) {}
  absl::Status Write(absl::string_view bytes) override {
    hub_.SendData(id_, channel::STDOUT, bytes);
    return absl::OkStatus();
  }

 private:
  FakeHub::Connection& hub_;
  uint64_t id_;
};

channel::Exit MakeExit(int code) {
  channel::Exit exit;
  exit.set_code(code);
  return exit;
}

// The next frame, which must open a session; its Open.
channel::Open ExpectOpen(FakeHub::Connection& hub) {
  std::optional<Frame> frame = hub.Next();
  EXPECT_TRUE(frame.has_value() && frame->has_open())
      << (frame.has_value() ? frame->DebugString() : "hang-up");
  return frame.has_value() ? frame->open() : channel::Open();
}

void AnswerStat(FakeHub::Connection& hub, const std::string& path, bool exists,
                bool directory) {
  const channel::Open open = ExpectOpen(hub);
  EXPECT_EQ(open.stat().path(), path);
  Frame frame;
  frame.mutable_stated()->set_session(open.session());
  frame.mutable_stated()->set_exists(exists);
  frame.mutable_stated()->set_directory(directory);
  hub.Send(frame);
}

// The agent's `podman cp - CTR:DIR`: STDIN to its end, credited as read.
std::string ReceiveStdin(FakeHub::Connection& hub, uint64_t id) {
  std::string all;
  for (;;) {
    std::optional<Frame> frame = hub.Next();
    if (!frame.has_value()) break;
    EXPECT_TRUE(frame->has_data()) << frame->DebugString();
    all += frame->data().data();
    if (!frame->data().data().empty()) {
      hub.Credit(id, frame->data().data().size());
    }
    if (frame->data().eof()) break;
  }
  return all;
}

class CpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fcvm-exec-cp-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    socket_dir_ = pattern;
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cp_test");
    ASSERT_TRUE(RemoveTree(root_).ok());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    src_ = root_ + "/app";
    ASSERT_EQ(mkdir(src_.c_str(), 0755), 0);
    ASSERT_TRUE(WriteFileAtomically(src_ + "/config", "port 80\n").ok());
    ASSERT_EQ(mkdir((root_ + "/dest").c_str(), 0755), 0);
  }
  void TearDown() override {
    unlink((socket_dir_ + "/channel.sock").c_str());
    rmdir(socket_dir_.c_str());
  }

  absl::Status Run(FakeHub::Serve serve,
                   const std::function<absl::Status(HubClient&)>& copy) {
    absl::StatusOr<std::unique_ptr<FakeHub>> hub =
        FakeHub::Start(socket_dir_, std::move(serve));
    if (!hub.ok()) return hub.status();
    absl::StatusOr<std::unique_ptr<HubClient>> client =
        HubClient::Connect(socket_dir_, "web");
    if (!client.ok()) return client.status();
    absl::Status status = copy(**client);
    client->reset();
    return status;
  }

  std::string Contents(const std::string& path) {
    absl::StatusOr<std::string> contents = ReadFile(path);
    return contents.ok() ? *contents
                         : "<" + std::string(contents.status().message()) + ">";
  }

  // Serves one CopyOut of `path` with the tree at src_.
  FakeHub::Serve CopyOutOf(const std::string& path) {
    return [this, path](FakeHub::Connection& hub) {
      const channel::Open open = ExpectOpen(hub);
      EXPECT_EQ(open.copy_out().path(), path);
      StdoutSink sink(hub, open.session());
      EXPECT_TRUE(WriteTar(src_, "app", sink).ok());
      hub.Finish(open.session(), MakeExit(0));
      EXPECT_FALSE(hub.Next().has_value());
    };
  }

  std::string socket_dir_, root_, src_;
};

TEST_F(CpTest, FromTheVmIntoAnExistingDirectory) {
  const absl::Status status =
      Run(CopyOutOf("/etc/app"), [&](HubClient& client) {
        return CopyFromVm(client, "/etc/app", root_ + "/dest", -1);
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Contents(root_ + "/dest/app/config"), "port 80\n");
}

TEST_F(CpTest, FromTheVmToANewName) {
  const absl::Status status =
      Run(CopyOutOf("/etc/app"), [&](HubClient& client) {
        return CopyFromVm(client, "/etc/app", root_ + "/dest/renamed", -1);
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Contents(root_ + "/dest/renamed/config"), "port 80\n");
}

TEST_F(CpTest, FromTheVmAsATarStream) {
  absl::StatusOr<Pipe> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  std::string streamed;
  std::thread reader([&] {
    absl::StatusOr<std::string> all = ReadAll(pipe->read.get(), "pipe");
    if (all.ok()) streamed = *all;
  });
  const absl::Status status =
      Run(CopyOutOf("/etc/app"), [&](HubClient& client) {
        return CopyFromVm(client, "/etc/app", "-", pipe->write.get());
      });
  pipe->write.reset();
  reader.join();
  ASSERT_TRUE(status.ok()) << status;
  class Sink : public ByteSink {
   public:
    absl::Status Write(absl::string_view b) override {
      bytes.append(b.data(), b.size());
      return absl::OkStatus();
    }
    std::string bytes;
  } expected;
  ASSERT_TRUE(WriteTar(src_, "app", expected).ok());
  EXPECT_TRUE(streamed == expected.bytes);
}

TEST_F(CpTest, FromTheVmSaysWhatTheAgentSaid) {
  const absl::Status status = Run(
      [](FakeHub::Connection& hub) {
        const channel::Open open = ExpectOpen(hub);
        hub.Started(open.session(), "s-1");
        hub.SendData(open.session(), channel::STDERR,
                     "Error: \"/nope\" could not be found on container "
                     "fcvm-workload: no such file or directory\n");
        hub.Finish(open.session(), MakeExit(125));
        EXPECT_FALSE(hub.Next().has_value());
      },
      [&](HubClient& client) {
        return CopyFromVm(client, "/nope", root_ + "/dest", -1);
      });
  EXPECT_EQ(status.message(),
            "web:/nope: Error: \"/nope\" could not be found on container "
            "fcvm-workload: no such file or directory");
  EXPECT_FALSE(IsChannelError(status));
}

TEST_F(CpTest, FromTheVmNeedsTheDestinationsParent) {
  const absl::Status status = Run(
      [](FakeHub::Connection& hub) { EXPECT_FALSE(hub.Next().has_value()); },
      [&](HubClient& client) {
        return CopyFromVm(client, "/etc/app", root_ + "/missing/x", -1);
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            absl::StrCat("copying to ", root_, "/missing/x: no such directory ",
                         root_, "/missing"));
}

TEST_F(CpTest, ToAnExistingDirectoryInTheVm) {
  std::string tar;
  const absl::Status status = Run(
      [&tar](FakeHub::Connection& hub) {
        AnswerStat(hub, "/srv", true, true);
        const channel::Open open = ExpectOpen(hub);
        EXPECT_EQ(open.copy_in().path(), "/srv");
        hub.Started(open.session(), "s-2");
        tar = ReceiveStdin(hub, open.session());
        hub.Finish(open.session(), MakeExit(0));
        EXPECT_FALSE(hub.Next().has_value());
      },
      [&](HubClient& client) { return CopyToVm(client, src_, "/srv", -1); });
  ASSERT_TRUE(status.ok()) << status;
  // What podman cp would unpack: the tree under its own name.
  class Source : public ByteSource {
   public:
    explicit Source(const std::string& b) : bytes(b) {}
    absl::StatusOr<absl::string_view> Read() override {
      return std::exchange(bytes, absl::string_view());
    }
    absl::string_view bytes;
  } source(tar);
  ASSERT_TRUE(ExtractTar(source, root_ + "/dest", "app").ok());
  EXPECT_EQ(Contents(root_ + "/dest/app/config"), "port 80\n");
}

TEST_F(CpTest, ToANewNameInTheVm) {
  std::string tar;
  const absl::Status status = Run(
      [&tar](FakeHub::Connection& hub) {
        AnswerStat(hub, "/srv/new", false, false);
        AnswerStat(hub, "/srv", true, true);
        const channel::Open open = ExpectOpen(hub);
        EXPECT_EQ(open.copy_in().path(), "/srv");
        tar = ReceiveStdin(hub, open.session());
        hub.Finish(open.session(), MakeExit(0));
        EXPECT_FALSE(hub.Next().has_value());
      },
      [&](HubClient& client) {
        return CopyToVm(client, src_ + "/config", "/srv/new", -1);
      });
  ASSERT_TRUE(status.ok()) << status;
  class Source : public ByteSource {
   public:
    explicit Source(const std::string& b) : bytes(b) {}
    absl::StatusOr<absl::string_view> Read() override {
      return std::exchange(bytes, absl::string_view());
    }
    absl::string_view bytes;
  } source(tar);
  ASSERT_TRUE(ExtractTar(source, root_ + "/dest", "new").ok());
  EXPECT_EQ(Contents(root_ + "/dest/new"), "port 80\n");
}

TEST_F(CpTest, ToTheVmNeedsTheDestinationsParent) {
  const absl::Status status = Run(
      [](FakeHub::Connection& hub) {
        AnswerStat(hub, "/nope/x", false, false);
        AnswerStat(hub, "/nope", false, false);
        EXPECT_FALSE(hub.Next().has_value());
      },
      [&](HubClient& client) { return CopyToVm(client, src_, "/nope/x", -1); });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            "copying to web:/nope/x: no such directory web:/nope in the "
            "container");
}

TEST_F(CpTest, ToTheVmKeepsWhatTheAgentSaidWhenItFailsMidway) {
  // Bigger than a window: the copy is still sending when the agent quits.
  ASSERT_TRUE(
      WriteFileAtomically(src_ + "/big", std::string(3 << 20, 'b')).ok());
  const absl::Status status = Run(
      [](FakeHub::Connection& hub) {
        AnswerStat(hub, "/srv", true, true);
        const channel::Open open = ExpectOpen(hub);
        hub.Started(open.session(), "s-2");
        std::optional<Frame> first = hub.Next();
        ASSERT_TRUE(first.has_value() && first->has_data());
        hub.SendData(open.session(), channel::STDERR,
                     "Error: copying to /srv/app/big: write: no space left "
                     "on device\n");
        hub.Finish(open.session(), MakeExit(125));
        // The rest of what the client sent within its credit, then its
        // hang-up.
        while (hub.Next().has_value()) {
        }
      },
      [&](HubClient& client) { return CopyToVm(client, src_, "/srv", -1); });
  EXPECT_EQ(status.message(),
            "web:/srv: Error: copying to /srv/app/big: write: no space left "
            "on device");
  EXPECT_FALSE(IsChannelError(status));
}

TEST_F(CpTest, ARefusedStatIsAChannelError) {
  const absl::Status status = Run(
      [](FakeHub::Connection& hub) {
        const channel::Open open = ExpectOpen(hub);
        hub.Error(open.session(), channel::Error::BAD_REQUEST,
                  "stat /srv: the container fcvm-workload is not running");
        EXPECT_FALSE(hub.Next().has_value());
      },
      [&](HubClient& client) { return CopyToVm(client, src_, "/srv", -1); });
  EXPECT_EQ(status.message(),
            "VM 'web': stat /srv: the container fcvm-workload is not running");
  EXPECT_TRUE(IsChannelError(status));
}

}  // namespace
}  // namespace fcvm::runner::exec
