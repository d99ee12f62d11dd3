#include "runner/cache/startup_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/cache/cache.pb.h"
#include "runner/state/lease.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kKiB = 1024;

class StartupCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(
        std::getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(root_.c_str(), 0700), 0) << root_;
  }

  // A published entry as `cache fill` leaves one: <cache>/<key>/ with a
  // manifest (tag = key) and `bytes` of real data (blocks on disk).
  void MakeEntry(const std::string& key, uint64_t bytes,
                 int64_t created_unix_ms) {
    const std::string dir = absl::StrCat(root_, "/cache/", key);
    ASSERT_TRUE(mkdir(absl::StrCat(root_, "/cache").c_str(), 0700) == 0 ||
                errno == EEXIST);
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0) << dir;
    SnapshotManifest manifest;
    manifest.set_tag(key);
    manifest.set_created_unix_ms(created_unix_ms);
    manifest.set_source_vm(absl::StrCat("src-", key));
    std::string json;
    ASSERT_TRUE(
        google::protobuf::util::MessageToJsonString(manifest, &json).ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/manifest.json", json).ok());
    ASSERT_TRUE(
        WriteFileAtomically(dir + "/memory", std::string(bytes, 'm')).ok());
  }

  // Sets <cache>/<key>.used's mtime to `unix_ms` (as a restore at that
  // time would).
  void UsedAt(StartupCache& cache, const std::string& key, int64_t unix_ms) {
    cache.Touch(key);
    const std::string used = absl::StrCat(root_, "/cache/", key, ".used");
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = unix_ms / 1000;
    times[0].tv_nsec = times[1].tv_nsec = (unix_ms % 1000) * 1000000;
    ASSERT_EQ(utimensat(AT_FDCWD, used.c_str(), times, 0), 0) << used;
  }

  static std::vector<std::string> Keys(const std::vector<CacheEntry>& all) {
    std::vector<std::string> keys;
    for (const CacheEntry& entry : all) keys.push_back(entry.key);
    return keys;
  }

  std::string root_;
};

TEST_F(StartupCacheTest, DigestIsSha256AndIsMemoizedPerVersionOfTheFile) {
  StartupCache cache(root_);
  const std::string path = root_ + "/base.ext4";
  ASSERT_TRUE(WriteFileAtomically(path, "first version").ok());
  absl::StatusOr<std::string> expected = Sha256File(path);
  ASSERT_TRUE(expected.ok()) << expected.status();

  absl::StatusOr<std::string> digest = cache.Digest("base image", path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, *expected);
  absl::StatusOr<std::string> memo = ReadFile(root_ + "/cache/digests.json");
  ASSERT_TRUE(memo.ok()) << memo.status();
  DigestMemo parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*memo, &parsed).ok())
      << *memo;
  ASSERT_EQ(parsed.files_size(), 1);
  EXPECT_EQ(parsed.files(0).path(), path);
  EXPECT_EQ(parsed.files(0).sha256(), *expected);

  // Same size and mtime, other bytes: trusted from the memo, not hashed.
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "other version").ok());
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  digest = cache.Digest("base image", path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, *expected);

  // A new version (content and mtime): hashed again, and remembered.
  ASSERT_TRUE(WriteFileAtomically(path, "the second version").ok());
  times[1].tv_sec += 5;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  absl::StatusOr<std::string> now = Sha256File(path);
  ASSERT_TRUE(now.ok());
  ASSERT_NE(*now, *expected);
  digest = cache.Digest("base image", path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, *now);
  memo = ReadFile(root_ + "/cache/digests.json");
  ASSERT_TRUE(memo.ok());
  parsed.Clear();
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*memo, &parsed).ok());
  ASSERT_EQ(parsed.files_size(), 1);  // The old record of the path replaced.
  EXPECT_EQ(parsed.files(0).sha256(), *now);

  // A second file is added beside it.
  const std::string kernel = root_ + "/vmlinux";
  ASSERT_TRUE(WriteFileAtomically(kernel, "kernel").ok());
  digest = cache.Digest("kernel", kernel);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, *Sha256File(kernel));
  parsed.Clear();
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  *ReadFile(root_ + "/cache/digests.json"), &parsed)
                  .ok());
  EXPECT_EQ(parsed.files_size(), 2);

  // A missing file is an error naming its role.
  EXPECT_THAT(cache.Digest("kernel", root_ + "/nope").status().message(),
              HasSubstr("the kernel"));
}

TEST_F(StartupCacheTest, ADamagedDigestMemoOnlyCostsHashingAgain) {
  StartupCache cache(root_);
  const std::string path = root_ + "/input";
  ASSERT_TRUE(WriteFileAtomically(path, "data").ok());
  ASSERT_EQ(mkdir((root_ + "/cache").c_str(), 0700), 0);
  ASSERT_TRUE(
      WriteFileAtomically(root_ + "/cache/digests.json", "{garbage").ok());
  absl::StatusOr<std::string> digest = cache.Digest("input", path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, *Sha256File(path));
}

TEST_F(StartupCacheTest, TheFillLockIsOneHoldersUntilItsFdCloses) {
  StartupCache cache(root_);
  absl::StatusOr<std::optional<UniqueFd>> first = cache.TryLock("k1");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  // Another open of the same lock file (flock is per open file
  // description): refused without waiting.
  absl::StatusOr<std::optional<UniqueFd>> second = cache.TryLock("k1");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->has_value());
  // Another key's lock is its own.
  absl::StatusOr<std::optional<UniqueFd>> other = cache.TryLock("k2");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->has_value());
  EXPECT_EQ(access((root_ + "/cache/k1.lock").c_str(), F_OK), 0);

  first->reset();  // Closed: released.
  absl::StatusOr<std::optional<UniqueFd>> third = cache.TryLock("k1");
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->has_value());
}

TEST_F(StartupCacheTest, ListsEntriesWithSizeLastUseAndManifest) {
  StartupCache cache(root_);
  StateStore vms(root_);
  absl::StatusOr<std::vector<CacheEntry>> none = cache.List(vms);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(*none, IsEmpty());

  MakeEntry("aaaa", 64 * kKiB, 1'000'000);
  MakeEntry("bbbb", 256 * kKiB, 2'000'000);
  // Not entries: a lock, a used mark, a partial directory, the memo.
  ASSERT_TRUE(cache.TryLock("cccc").ok());
  ASSERT_EQ(mkdir((root_ + "/cache/.partial-dddd-x").c_str(), 0700), 0);
  ASSERT_TRUE(cache.Digest("self", root_ + "/cache/aaaa/memory").ok());
  UsedAt(cache, "bbbb", 3'000'000);

  absl::StatusOr<std::vector<CacheEntry>> all = cache.List(vms);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_THAT(Keys(*all), ElementsAre("aaaa", "bbbb"));
  const CacheEntry& a = (*all)[0];
  const CacheEntry& b = (*all)[1];
  EXPECT_EQ(a.dir, root_ + "/cache/aaaa");
  ASSERT_TRUE(a.manifest.ok()) << a.manifest.status();
  EXPECT_EQ(a.manifest->source_vm(), "src-aaaa");
  // Blocks on disk: the data and the manifest's block or so.
  EXPECT_GE(a.bytes, 64 * kKiB);
  EXPECT_LT(a.bytes, 64 * kKiB + 32 * kKiB);
  EXPECT_GE(b.bytes, 256 * kKiB);
  EXPECT_LT(b.bytes, 256 * kKiB + 32 * kKiB);
  // Never restored: its creation; restored: the restore.
  EXPECT_EQ(a.last_used_unix_ms, 1'000'000);
  EXPECT_EQ(b.last_used_unix_ms, 3'000'000);
  EXPECT_THAT(a.users, IsEmpty());

  EXPECT_TRUE(cache.Lookup("aaaa").ok());
  EXPECT_TRUE(absl::IsNotFound(cache.Lookup("cccc").status()));
}

TEST_F(StartupCacheTest, AnEntryWithABadManifestIsListedWithTheReason) {
  StartupCache cache(root_);
  StateStore vms(root_);
  MakeEntry("aaaa", 4 * kKiB, 1'000'000);
  ASSERT_TRUE(WriteFileAtomically(root_ + "/cache/aaaa/manifest.json",
                                  "{\"tag\": \"zzzz\"}")
                  .ok());
  absl::StatusOr<std::vector<CacheEntry>> all = cache.List(vms);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_TRUE(absl::IsDataLoss((*all)[0].manifest.status()));
  EXPECT_THAT((*all)[0].manifest.status().message(), HasSubstr("zzzz"));
  // It can still be removed.
  EXPECT_TRUE(cache.Remove(vms, "aaaa", /*force=*/false).ok());
  EXPECT_NE(access((root_ + "/cache/aaaa").c_str(), F_OK), 0);
}

TEST_F(StartupCacheTest, RemoveTakesTheEntryAndItsUseMark) {
  StartupCache cache(root_);
  StateStore vms(root_);
  MakeEntry("aaaa", 4 * kKiB, 1'000'000);
  UsedAt(cache, "aaaa", 2'000'000);
  absl::Status missing = cache.Remove(vms, "nope", /*force=*/false);
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(missing.message(), HasSubstr("no cache entry 'nope'"));
  ASSERT_TRUE(cache.Remove(vms, "aaaa", /*force=*/false).ok());
  EXPECT_NE(access((root_ + "/cache/aaaa").c_str(), F_OK), 0);
  EXPECT_NE(access((root_ + "/cache/aaaa.used").c_str(), F_OK), 0);
  EXPECT_TRUE(absl::IsNotFound(cache.Lookup("aaaa").status()));
  EXPECT_THAT(*cache.List(vms), IsEmpty());
}

TEST_F(StartupCacheTest, PruneRemovesLeastRecentlyUsedFirstUntilUnderTheLimit) {
  StartupCache cache(root_);
  StateStore vms(root_);
  // Created in order a, b, c, d; then used: c (oldest use), a, d. b was
  // never restored: its creation (2'000'000) is its last use.
  MakeEntry("aaaa", 100 * kKiB, 1'000'000);
  MakeEntry("bbbb", 100 * kKiB, 2'000'000);
  MakeEntry("cccc", 100 * kKiB, 3'000'000);
  MakeEntry("dddd", 100 * kKiB, 4'000'000);
  UsedAt(cache, "cccc", 5'000'000);
  UsedAt(cache, "aaaa", 6'000'000);
  UsedAt(cache, "dddd", 7'000'000);
  absl::StatusOr<std::vector<CacheEntry>> all = cache.List(vms);
  ASSERT_TRUE(all.ok());
  uint64_t total = 0, largest = 0;
  for (const CacheEntry& entry : *all) {
    total += entry.bytes;
    largest = std::max(largest, entry.bytes);
  }

  // Under the limit: nothing goes.
  absl::StatusOr<PruneReport> report = cache.Prune(vms, total);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->removed, IsEmpty());
  EXPECT_EQ(report->bytes_before, total);
  EXPECT_EQ(report->bytes_after, total);

  // Room for a bit more than two: b (never used since created), then c.
  report = cache.Prune(vms, 2 * largest + largest / 2);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->removed, ElementsAre("bbbb", "cccc"));
  EXPECT_THAT(report->in_use, IsEmpty());
  EXPECT_EQ(report->bytes_before, total);
  EXPECT_LE(report->bytes_after, 2 * largest + largest / 2);
  EXPECT_THAT(Keys(*cache.List(vms)), ElementsAre("aaaa", "dddd"));

  // `keep` stays though it is the least recently used: the next goes.
  report = cache.Prune(vms, largest + largest / 2, /*keep=*/"aaaa");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->removed, ElementsAre("dddd"));
  EXPECT_THAT(Keys(*cache.List(vms)), ElementsAre("aaaa"));

  // A limit of 0 with `keep` the only entry: it stays, over the limit.
  report = cache.Prune(vms, 0, /*keep=*/"aaaa");
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(report->removed, IsEmpty());
  EXPECT_GT(report->bytes_after, 0u);
  report = cache.Prune(vms, 0);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(report->removed, ElementsAre("aaaa"));
  EXPECT_EQ(report->bytes_after, 0u);
  EXPECT_THAT(*cache.List(vms), IsEmpty());
}

TEST_F(StartupCacheTest, AnEntryALiveVmWasRestoredFromIsInUse) {
  StartupCache cache(root_);
  StateStore vms(root_);
  MakeEntry("aaaa", 100 * kKiB, 1'000'000);
  MakeEntry("bbbb", 100 * kKiB, 2'000'000);
  // A live VM (its lease held, here by this process) restored from aaaa,
  // and one whose owner is gone restored from bbbb.
  VmState live;
  live.set_name("user-1");
  live.set_phase(VmState::RUNNING);
  live.mutable_restored_from()->set_cache_key("aaaa");
  absl::StatusOr<Lease> lease = vms.Create(live);
  ASSERT_TRUE(lease.ok()) << lease.status();
  VmState dead;
  dead.set_name("user-2");
  dead.set_phase(VmState::RUNNING);
  dead.mutable_restored_from()->set_cache_key("bbbb");
  {
    absl::StatusOr<Lease> gone = vms.Create(dead);
    ASSERT_TRUE(gone.ok()) << gone.status();
  }

  absl::StatusOr<std::vector<CacheEntry>> all = cache.List(vms);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_THAT((*all)[0].users, ElementsAre("user-1"));
  EXPECT_THAT((*all)[1].users, IsEmpty());

  absl::Status refused = cache.Remove(vms, "aaaa", /*force=*/false);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("in use by user-1"));

  // Prune skips it (reported) and removes the unused one, though newer.
  absl::StatusOr<PruneReport> report = cache.Prune(vms, 0);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->in_use, ElementsAre("aaaa"));
  EXPECT_THAT(report->removed, ElementsAre("bbbb"));
  EXPECT_GT(report->bytes_after, 0u);
  EXPECT_THAT(Keys(*cache.List(vms)), ElementsAre("aaaa"));

  // -f removes it anyway.
  EXPECT_TRUE(cache.Remove(vms, "aaaa", /*force=*/true).ok());
  EXPECT_THAT(*cache.List(vms), IsEmpty());
}

}  // namespace
}  // namespace fcvm::runner
