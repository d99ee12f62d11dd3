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
    for (const char* name :
         {"a.sock", "plain", "late.sock", "live.sock", "own.sock"}) {
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

TEST(UnixSocketTest, RefusesToTakeOverALiveListener) {
  const std::string path = TempPath("live.sock");
  absl::StatusOr<UniqueFd> first = ListenUnixStream(path, 0600, "first");
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat before;
  ASSERT_EQ(lstat(path.c_str(), &before), 0);
  absl::StatusOr<UniqueFd> second =
      ListenUnixStream(path, 0600, "memory server");
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  EXPECT_EQ(second.status().message(),
            absl::StrCat("memory server: another server listens on ", path,
                         "; not replacing it"));
  // The first server keeps its socket file and its clients.
  struct stat after;
  ASSERT_EQ(lstat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  absl::StatusOr<UniqueFd> client = ConnectUnixStream(path, "test");
  ASSERT_TRUE(client.ok()) << client.status();
  // The probe's connection and this one are both waiting for the first.
  for (int i = 0; i < 2; ++i) {
    UniqueFd accepted(accept4(first->get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(accepted) << i;
  }
  // Once it stops listening, its socket is stale and may be replaced.
  first->reset();
  EXPECT_TRUE(ListenUnixStream(path, 0600, "third").ok());
}

TEST(UnixSocketTest, RemovesTheSocketOnlyWhileItIsStillItsOwn) {
  const std::string path = TempPath("own.sock");
  SocketFileId first_id;
  absl::StatusOr<UniqueFd> first =
      ListenUnixStream(path, 0600, "first", &first_id);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_EQ(first_id.ino, st.st_ino);
  EXPECT_EQ(first_id.dev, st.st_dev);
  // The first server stops listening; a second one takes the stale path
  // (here the new socket file may well get the old one's inode number).
  first->reset();
  SocketFileId second_id;
  absl::StatusOr<UniqueFd> second =
      ListenUnixStream(path, 0600, "second", &second_id);
  ASSERT_TRUE(second.ok()) << second.status();
  // The first one's clean-up leaves the second's socket alone.
  absl::StatusOr<bool> removed = RemoveUnixSocketIfSame(path, first_id);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);
  EXPECT_TRUE(ConnectUnixStream(path, "test").ok());
  // Nor does it remove one of another inode once that one is stale.
  SocketFileId other = second_id;
  other.ino += 1;
  second->reset();
  removed = RemoveUnixSocketIfSame(path, other);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  // Its own, once closed, it removes.
  removed = RemoveUnixSocketIfSame(path, second_id);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(*removed);
  EXPECT_NE(lstat(path.c_str(), &st), 0);
  removed = RemoveUnixSocketIfSame(path, second_id);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);  // Gone already.
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
