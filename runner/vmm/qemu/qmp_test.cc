// The QMP client against a real QEMU (paused before it runs anything).
#include "runner/vmm/qemu/qmp.h"

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner::qemu {
namespace {

using ::testing::HasSubstr;

class QmpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fcvm-qmp.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/qmp.sock";
    SubprocessOptions options;
    options.argv = {"qemu-system-x86_64",
                    "-M",
                    "microvm",
                    "-accel",
                    "tcg",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-S",
                    "-qmp",
                    absl::StrCat("unix:", socket_, ",server=on,wait=off")};
    options.stdout_mode = StdioMode::kNull;
    absl::StatusOr<Subprocess> qemu = Subprocess::Start(std::move(options));
    ASSERT_TRUE(qemu.ok()) << qemu.status();
    qemu_.emplace(std::move(*qemu));
  }
  void TearDown() override {
    if (qemu_.has_value()) (void)qemu_->Kill();
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }

  std::string dir_, socket_;
  std::optional<Subprocess> qemu_;
};

TEST_F(QmpTest, GreetingStatusEventsAndQuit) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect(socket_, absl::Seconds(10));
  ASSERT_TRUE(qmp.ok()) << qmp.status();
  EXPECT_THAT(qmp->version(),
              ::testing::MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));

  absl::StatusOr<google::protobuf::Value> status = qmp->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->struct_value().fields().at("status").string_value(),
            "prelaunch");
  EXPECT_FALSE(status->struct_value().fields().at("running").bool_value());

  ASSERT_TRUE(qmp->Execute("cont").ok());
  EXPECT_TRUE(qmp->WaitEvent("RESUME", absl::Seconds(5)).ok());
  ASSERT_TRUE(qmp->Execute("stop").ok());
  EXPECT_TRUE(qmp->WaitEvent("STOP", absl::Seconds(5)).ok());

  ASSERT_TRUE(qmp->Execute("quit").ok());
  absl::StatusOr<ExitStatus> exit = qemu_->Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString();
  qemu_.reset();
}

TEST_F(QmpTest, QmpErrorsNameTheCommandAndClass) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect(socket_, absl::Seconds(10));
  ASSERT_TRUE(qmp.ok()) << qmp.status();
  absl::StatusOr<google::protobuf::Value> bad = qmp->Execute("no-such-command");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("QMP no-such-command: CommandNotFound"));
  google::protobuf::Struct arguments;
  (*arguments.mutable_fields())["device"].set_string_value("nope");
  bad = qmp->Execute("eject", arguments);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("QMP eject: "));
  // The connection is still good after errors.
  EXPECT_TRUE(qmp->Execute("query-status").ok());
}

// A descriptor handed over with getfd is QEMU's under that name: closefd
// finds it once, and not again.
TEST_F(QmpTest, ADescriptorHandedOverIsQemusUnderItsName) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect(socket_, absl::Seconds(10));
  ASSERT_TRUE(qmp.ok()) << qmp.status();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_TRUE(qmp->SendFd("test-fd", pipe_fds[1]).ok());
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  google::protobuf::Struct name;
  (*name.mutable_fields())["fdname"].set_string_value("test-fd");
  EXPECT_TRUE(qmp->Execute("closefd", name).ok());
  EXPECT_FALSE(qmp->Execute("closefd", name).ok());
  // Without a descriptor, getfd is refused by QEMU.
  EXPECT_FALSE(qmp->Execute("getfd", name).ok());
}

TEST(QmpNoQemuTest, NoSocketIsAnErrorNamingIt) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect("/tmp/fcvm-no-such-qmp.sock", absl::Milliseconds(50));
  ASSERT_FALSE(qmp.ok());
  EXPECT_THAT(qmp.status().message(), HasSubstr("/tmp/fcvm-no-such-qmp.sock"));
}

}  // namespace
}  // namespace fcvm::runner::qemu
