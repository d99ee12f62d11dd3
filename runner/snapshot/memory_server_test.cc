#include "runner/snapshot/memory_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <tuple>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/state/lease.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class MemoryServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: the socket lives under it (sun_path is 108 bytes).
    char dir[] = "/tmp/fcvm-ms-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    ASSERT_TRUE(EnsurePrivateDir(root_).ok());
  }
  void TearDown() override { (void)RemoveTree(root_); }
  // A published snapshot `tag` (the memory server's files need only exist).
  void Snapshot(const std::string& tag) {
    SnapshotStore store(root_);
    absl::StatusOr<PendingSnapshot> pending = store.Begin(tag);
    ASSERT_TRUE(pending.ok()) << pending.status();
    SnapshotManifest manifest;
    manifest.set_tag(tag);
    ASSERT_TRUE(store.Publish(*pending, manifest).ok());
  }
  // The place of `tag`'s server as a server leaves it: a lease file, and
  // a socket file nobody listens on.
  MemoryServerPaths Place(const std::string& tag) {
    const MemoryServerPaths paths = MemoryServerPathsFor(root_, tag);
    EXPECT_TRUE(EnsurePrivateDir(root_ + "/memory-servers").ok());
    EXPECT_TRUE(EnsurePrivateDir(paths.dir).ok());
    EXPECT_TRUE(Lease::Create(paths.dir).ok());  // Released at once.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    paths.socket.copy(address.sun_path, sizeof(address.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
              0);
    close(fd);
    return paths;
  }
  std::string root_;
};

TEST_F(MemoryServerTest, TheServersPlaceIsUnderTheStateRootByTag) {
  const MemoryServerPaths paths = MemoryServerPathsFor("/run/fcvm", "t1");
  EXPECT_EQ(paths.dir, "/run/fcvm/memory-servers/t1");
  EXPECT_EQ(paths.socket, "/run/fcvm/memory-servers/t1/uffd.sock");
  EXPECT_EQ(paths.start_lock, "/run/fcvm/memory-servers/t1/start.lock");
}

TEST_F(MemoryServerTest, GcClearsADeadServersSocketAndTheGoneSnapshotsPlace) {
  Snapshot("kept");
  const MemoryServerPaths kept = Place("kept");
  const MemoryServerPaths gone = Place("gone");  // No such snapshot.
  SnapshotStore snapshots(root_);
  std::vector<std::string> removed = CollectMemoryServers(snapshots, root_);
  EXPECT_THAT(removed, ::testing::UnorderedElementsAre(kept.socket, gone.dir));
  EXPECT_NE(access(kept.socket.c_str(), F_OK), 0);
  EXPECT_EQ(access(kept.dir.c_str(), F_OK), 0);
  EXPECT_NE(access(gone.dir.c_str(), F_OK), 0);
  EXPECT_THAT(CollectMemoryServers(snapshots, root_), IsEmpty());
}

TEST_F(MemoryServerTest, ALiveServersPlaceIsLeftAlone) {
  Snapshot("live");
  MemoryServerPaths paths = Place("live");
  absl::StatusOr<std::optional<Lease>> held = Lease::TryTake(paths.dir);
  ASSERT_TRUE(held.ok() && held->has_value());  // Ours now: a live server.
  SnapshotStore snapshots(root_);
  EXPECT_THAT(CollectMemoryServers(snapshots, root_), IsEmpty());
  EXPECT_EQ(access(paths.socket.c_str(), F_OK), 0);
  absl::Status removed =
      RemoveMemoryServerPlace(root_, "live", absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsFailedPrecondition(removed)) << removed;
  EXPECT_THAT(removed.message(), HasSubstr("still runs"));
  held->reset();  // The server leaves.
  EXPECT_TRUE(RemoveMemoryServerPlace(root_, "live").ok());
  EXPECT_NE(access(paths.dir.c_str(), F_OK), 0);
  EXPECT_TRUE(RemoveMemoryServerPlace(root_, "live").ok());  // Nothing left.
}

TEST_F(MemoryServerTest, UffdClonesAreTheLiveOnesOfTheTag) {
  StateStore store(root_);
  std::vector<Lease> leases;
  for (const auto& [name, tag, backend] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"a-1", "a", "uffd"}, {"a-2", "a", "file"}, {"b-1", "b", "uffd"}}) {
    VmState state;
    state.set_name(name);
    state.mutable_restored_from()->set_snapshot(tag);
    state.mutable_restored_from()->set_memory_backend(backend);
    absl::StatusOr<Lease> lease = store.Create(state);
    ASSERT_TRUE(lease.ok()) << lease.status();
    leases.push_back(std::move(*lease));
  }
  EXPECT_THAT(*UffdClones(store, "a"), ElementsAre("a-1"));
  leases.erase(leases.begin());  // a-1's owner is gone.
  EXPECT_THAT(*UffdClones(store, "a"), IsEmpty());
  EXPECT_THAT(*UffdClones(store, "b"), ElementsAre("b-1"));
}

}  // namespace
}  // namespace fcvm::runner
