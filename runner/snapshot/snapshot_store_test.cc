#include "runner/snapshot/snapshot_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(std::getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::string root_;
};

TEST_F(SnapshotStoreTest, APendingSnapshotIsInvisibleUntilPublished) {
  SnapshotStore store(root_);
  absl::StatusOr<PendingSnapshot> pending = store.Begin("t1");
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_TRUE(WriteFileAtomically(pending->dir + "/vmstate", "x").ok());
  EXPECT_TRUE(store.List()->empty());
  // Its maker lives (holds the lease): not abandoned.
  EXPECT_TRUE(store.Abandoned()->empty());
  SnapshotManifest manifest;
  manifest.set_tag("t1");
  ASSERT_TRUE(store.Publish(*pending, manifest).ok());
  absl::StatusOr<std::vector<SnapshotEntry>> all = store.List();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].tag, "t1");
  EXPECT_TRUE((*all)[0].manifest.ok());
  EXPECT_EQ(access((store.TagDir("t1") + "/vmstate").c_str(), F_OK), 0);
  EXPECT_THAT(store.Begin("t1").status().message(), HasSubstr("exists"));
  EXPECT_EQ(*store.NextTag("t"), "t-1");
  ASSERT_TRUE(store.Remove("t1").ok());
  EXPECT_TRUE(absl::IsNotFound(store.Read("t1").status()));
}

TEST_F(SnapshotStoreTest, AnAbandonedPartialSnapshotIsFound) {
  SnapshotStore store(root_);
  std::string dir;
  {
    absl::StatusOr<PendingSnapshot> pending = store.Begin("t2");
    ASSERT_TRUE(pending.ok());
    dir = pending->dir;
  }  // Its maker is gone: the lease is free.
  absl::StatusOr<std::vector<std::string>> abandoned = store.Abandoned();
  ASSERT_TRUE(abandoned.ok());
  EXPECT_EQ(*abandoned, std::vector<std::string>{dir});
  EXPECT_FALSE(store.RemoveAbandoned(root_ + "/vms").ok());
  // A removal that failed half way is collected too.
  const std::string removing = store.dir() + "/.removing-t9-0123";
  ASSERT_EQ(mkdir(removing.c_str(), 0700), 0);
  abandoned = store.Abandoned();
  EXPECT_EQ(abandoned->size(), 2u);
  ASSERT_TRUE(store.RemoveAbandoned(removing).ok());
  ASSERT_TRUE(store.RemoveAbandoned(dir).ok());
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
}

TEST_F(SnapshotStoreTest, ABadOrForeignManifestIsDataLoss) {
  SnapshotStore store(root_);
  absl::StatusOr<PendingSnapshot> pending = store.Begin("t3");
  ASSERT_TRUE(pending.ok());
  SnapshotManifest manifest;
  manifest.set_tag("t3");
  ASSERT_TRUE(store.Publish(*pending, manifest).ok());
  const std::string path = store.TagDir("t3") + "/manifest.json";
  ASSERT_TRUE(WriteFileAtomically(path, "{\"tag\": \"other\"}").ok());
  EXPECT_THAT(store.Read("t3").status().message(),
              HasSubstr("is the manifest of 'other'"));
  ASSERT_TRUE(WriteFileAtomically(path, "{\"tag\": ").ok());
  EXPECT_TRUE(absl::IsDataLoss(store.Read("t3").status()));
  EXPECT_THAT(store.Begin("Bad").status().message(),
              HasSubstr("bad snapshot tag 'Bad'"));
}

}  // namespace
}  // namespace fcvm::runner
