#include "uffd/working_set.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::ElementsAre;
using ::testing::FieldsAre;

constexpr uint64_t kPage = 4096;

std::string Path(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

TEST(WorkingSetTest, RecordsTheFirstVmOnceAndLoadsForTheSameFileOnly) {
  WorkingSetRecorder recorder(Path("ws"), 1 << 20, 42, absl::Hours(1));
  EXPECT_TRUE(recorder.Start(100));
  EXPECT_FALSE(recorder.Start(200));  // Only the first VM.
  EXPECT_TRUE(recorder.Recording(100, absl::Now()));
  EXPECT_FALSE(recorder.Recording(200, absl::Now()));
  EXPECT_FALSE(recorder.Recording(100, absl::Now() + absl::Hours(2)));
  for (uint64_t page : {7, 3, 3, 4}) recorder.Add(page * kPage, kPage);
  EXPECT_EQ(*recorder.Finish(), 3u);
  EXPECT_EQ(*recorder.Finish(), 0u);  // Once.

  absl::StatusOr<std::optional<WorkingSet>> set =
      LoadWorkingSet(Path("ws"), 1 << 20, 42);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_TRUE(set->has_value());
  EXPECT_THAT((*set)->page_offsets(),
              ElementsAre(3 * kPage, 4 * kPage, 7 * kPage));
  EXPECT_EQ((*set)->recorded_from_pid(), 100);
  // Another file (size or mtime): not this set.
  EXPECT_FALSE(LoadWorkingSet(Path("ws"), 2 << 20, 42)->has_value());
  EXPECT_FALSE(LoadWorkingSet(Path("ws"), 1 << 20, 43)->has_value());
  EXPECT_FALSE(LoadWorkingSet(Path("none"), 1 << 20, 42)->has_value());
}

TEST(WorkingSetTest, PlansContiguousRunsWithinABatchAndInsideRegions) {
  // Two regions: file [0, 16 pages) at 0x100000, [16, 24) at 0x900000.
  absl::StatusOr<RegionTable> table =
      RegionTable::Create({{0x900000, 8 * kPage, 16 * kPage, kPage},
                           {0x100000, 16 * kPage, 0, kPage}});
  ASSERT_TRUE(table.ok());
  WorkingSet set;
  set.set_page_size(kPage);
  // 0-4 contiguous, 6, then 15 and 16 (contiguous in the file, not in
  // memory), then 30 (past every region).
  for (uint64_t page : {0, 1, 2, 3, 4, 6, 15, 16, 30}) {
    set.add_page_offsets(page * kPage);
  }
  EXPECT_THAT(PlanPrefetch(*table, set, 2 * kPage),
              ElementsAre(FieldsAre(0x100000, 0, 2 * kPage),
                          FieldsAre(0x102000, 2 * kPage, 2 * kPage),
                          FieldsAre(0x104000, 4 * kPage, kPage),
                          FieldsAre(0x106000, 6 * kPage, kPage),
                          FieldsAre(0x10f000, 15 * kPage, kPage),
                          FieldsAre(0x900000, 16 * kPage, kPage)));
  EXPECT_EQ(PlanPrefetch(*table, set, 1 << 20).size(), 4u);
  // A set recorded with other pages (2 MiB): nothing applies.
  set.set_page_size(2 << 20);
  EXPECT_TRUE(PlanPrefetch(*table, set, 1 << 20).empty());
}

}  // namespace
}  // namespace fcvm::uffd
