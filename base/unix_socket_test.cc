#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

using ::testing::HasSubstr;

// Under /tmp: TEST_TMPDIR is too deep for sun_path's 108 bytes.
std::string TempPath(const std::string& name) {
  static const std::string dir = [] {
    char pattern[] = "/tmp/fcvm-unix-socket-test.XXXXXX";
    return std::string(mkdtemp(pattern));
  }();
  return absl::StrCat(dir, "/", name);
}

class CleanUp : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::string dir = TempPath("");
    for (const char* name : {"a.sock", "plain", "late.sock"}) {
      unlink(absl::StrCat(dir, name).c_str());
    }
    rmdir(dir.c_str());
  }
};
const auto* const kCleanUp = ::testing::AddGlobalTestEnvironment(new CleanUp);

TEST(UnixSocketTest, ListensWithTheModeAskedAndAccepts) {
  const std::string path = TempPath("a.sock");
  absl::StatusOr<UniqueFd> server = ListenUnixStream(path, 0600, "test");
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  absl::StatusOr<UniqueFd> client = ConnectUnixStream(path, "test");
  ASSERT_TRUE(client.ok()) << client.status();
  UniqueFd accepted(accept4(server->get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted);
  // A stale socket from an earlier server is replaced.
  server->reset();
  EXPECT_TRUE(ListenUnixStream(path, 0600, "test").ok());
}

TEST(UnixSocketTest, RefusesToReplaceAFileThatIsNotASocket) {
  const std::string path = TempPath("plain");
  ASSERT_TRUE(WriteFileAtomically(path, "keep me", 0600).ok());
  absl::StatusOr<UniqueFd> server =
      ListenUnixStream(path, 0600, "memory server");
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("not a socket"));
  EXPECT_EQ(*ReadFile(path), "keep me");
}

TEST(UnixSocketTest, ErrorsNameWhatAndWhere) {
  absl::StatusOr<UniqueFd> none =
      ConnectUnixStream(TempPath("missing.sock"), "QMP");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::IsNotFound(none.status()));
  EXPECT_THAT(none.status().message(), HasSubstr("connect to QMP at "));
  absl::StatusOr<UniqueFd> long_path =
      ConnectUnixStream(std::string(200, 'x'), "QMP");
  ASSERT_FALSE(long_path.ok());
  EXPECT_THAT(long_path.status().message(), HasSubstr("longer than 107"));
}

TEST(UnixSocketTest, WhenReadyWaitsForTheListener) {
  const std::string path = TempPath("late.sock");
  absl::StatusOr<UniqueFd> server;
  std::thread late([&] {
    absl::SleepFor(absl::Milliseconds(100));
    server = ListenUnixStream(path, 0600, "late");
  });
  absl::StatusOr<UniqueFd> client =
      ConnectUnixStreamWhenReady(path, "late", absl::Seconds(10));
  late.join();
  EXPECT_TRUE(client.ok()) << client.status();
  // Nothing ever listens: it gives up when told.
  const absl::Time start = absl::Now();
  EXPECT_FALSE(ConnectUnixStreamWhenReady(TempPath("never.sock"), "never",
                                          absl::Milliseconds(200))
                   .ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace fcvm
