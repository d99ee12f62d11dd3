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

TEST(WorkingSetTest, RecordsTheFirstVmInItsWindowOnce) {
  const absl::Time start = absl::FromUnixSeconds(1000);
  WorkingSetRecorder recorder(1 << 20, 42, absl::Seconds(10));
  EXPECT_EQ(recorder.deadline(), absl::InfiniteFuture());
  EXPECT_EQ(recorder.Close(start), std::nullopt);  // Nothing started.
  EXPECT_FALSE(recorder.closed());
  EXPECT_TRUE(recorder.Start(7, 100, start));
  EXPECT_FALSE(recorder.Start(8, 200, start));  // Only the first VM.
  EXPECT_EQ(recorder.vm_id(), 7u);
  EXPECT_EQ(recorder.deadline(), start + absl::Seconds(10));
  for (uint64_t page : {7, 3, 3, 4}) {
    recorder.Add(7, page * kPage, kPage, start + absl::Seconds(1));
  }
  recorder.Add(8, 9 * kPage, kPage, start);                       // Another VM.
  recorder.Add(7, 10 * kPage, kPage, start + absl::Seconds(10));  // Too late.
  recorder.Add(7, 11 * kPage, 2 << 20,
               start + absl::Seconds(1));  // Other size.
  std::optional<WorkingSet> set = recorder.Close(start + absl::Seconds(4));
  ASSERT_TRUE(set.has_value());
  EXPECT_TRUE(recorder.closed());
  EXPECT_THAT(set->page_offsets(),
              ElementsAre(3 * kPage, 4 * kPage, 7 * kPage));
  EXPECT_EQ(set->page_size(), kPage);
  EXPECT_EQ(set->recorded_from_pid(), 100);
  EXPECT_EQ(set->memory_file_size(), 1u << 20);
  EXPECT_EQ(set->memory_file_mtime_ns(), 42);
  EXPECT_DOUBLE_EQ(set->window_seconds(), 4.0);
  // Once: nothing more is taken or returned.
  recorder.Add(7, 5 * kPage, kPage, start + absl::Seconds(5));
  EXPECT_EQ(recorder.Close(start + absl::Seconds(5)), std::nullopt);
  EXPECT_FALSE(recorder.Start(9, 300, start));
}

TEST(WorkingSetTest, LoadsOnlyForTheSameFile) {
  WorkingSet set;
  set.set_memory_file_size(1 << 20);
  set.set_memory_file_mtime_ns(42);
  set.set_page_size(kPage);
  set.add_page_offsets(3 * kPage);
  ASSERT_TRUE(WriteWorkingSet(Path("ws"), set).ok());
  absl::StatusOr<std::optional<WorkingSet>> loaded =
      LoadWorkingSet(Path("ws"), 1 << 20, 42);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_THAT((*loaded)->page_offsets(), ElementsAre(3 * kPage));
  // Another file (size or mtime): not this set.
  for (auto [size, mtime] : {std::pair<uint64_t, int64_t>{2 << 20, 42},
                             std::pair<uint64_t, int64_t>{1 << 20, 43}}) {
    loaded = LoadWorkingSet(Path("ws"), size, mtime);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_FALSE(loaded->has_value());
  }
  loaded = LoadWorkingSet(Path("none"), 1 << 20, 42);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
}

WorkingSet Pages(std::initializer_list<uint64_t> pages) {
  WorkingSet set;
  set.set_page_size(kPage);
  for (uint64_t page : pages) set.add_page_offsets(page * kPage);
  return set;
}

TEST(WorkingSetTest, PlansRunsOfContiguousFilePagesWithinABatch) {
  const PrefetchPlan plan(Pages({0, 1, 2, 3, 4, 6, 15, 16, 30}), 2 * kPage);
  EXPECT_EQ(plan.pages(), 9u);
  EXPECT_THAT(
      plan.runs(),
      ElementsAre(FieldsAre(0, 2 * kPage), FieldsAre(2 * kPage, 2 * kPage),
                  FieldsAre(4 * kPage, kPage), FieldsAre(6 * kPage, kPage),
                  FieldsAre(15 * kPage, 2 * kPage),
                  FieldsAre(30 * kPage, kPage)));
  for (uint64_t page : {0, 4, 6, 15, 16, 30}) {
    EXPECT_TRUE(plan.Contains(page * kPage)) << page;
  }
  for (uint64_t page : {5, 7, 14, 17, 29, 31}) {
    EXPECT_FALSE(plan.Contains(page * kPage)) << page;
  }
  EXPECT_EQ(PrefetchPlan(Pages({0, 1, 2, 3, 4}), 1 << 20).runs().size(), 1u);
}

// Every span a VM with `table` gets from `plan`, copying each whole.
std::vector<PrefetchSpan> AllSpans(const PrefetchPlan& plan,
                                   const RegionTable& table) {
  std::vector<PrefetchSpan> spans;
  PrefetchCursor cursor;
  while (std::optional<PrefetchSpan> span =
             NextPrefetchSpan(plan, table, cursor)) {
    spans.push_back(*span);
    AdvancePrefetch(plan, cursor, span->length);
  }
  return spans;
}

TEST(WorkingSetTest, EachVmPlacesTheSharedPlanInItsOwnRegions) {
  // Two regions: file [0, 16 pages) at 0x100000, [16, 24) at 0x900000.
  absl::StatusOr<RegionTable> table =
      RegionTable::Create({{0x900000, 8 * kPage, 16 * kPage, kPage},
                           {0x100000, 16 * kPage, 0, kPage}});
  ASSERT_TRUE(table.ok());
  // 0-4 contiguous, 6, then 15 and 16 (contiguous in the file, not in
  // memory: the run is cut), then 30 (past every region: skipped).
  const PrefetchPlan plan(Pages({0, 1, 2, 3, 4, 6, 15, 16, 30}), 2 * kPage);
  EXPECT_THAT(AllSpans(plan, *table),
              ElementsAre(FieldsAre(0x100000, 0, 2 * kPage),
                          FieldsAre(0x102000, 2 * kPage, 2 * kPage),
                          FieldsAre(0x104000, 4 * kPage, kPage),
                          FieldsAre(0x106000, 6 * kPage, kPage),
                          FieldsAre(0x10f000, 15 * kPage, kPage),
                          FieldsAre(0x900000, 16 * kPage, kPage)));
  // The same plan in another VM's address space.
  absl::StatusOr<RegionTable> other =
      RegionTable::Create({{0x7f0000000000, 32 * kPage, 0, kPage}});
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(AllSpans(plan, *other),
              ElementsAre(FieldsAre(0x7f0000000000, 0, 2 * kPage),
                          FieldsAre(0x7f0000002000, 2 * kPage, 2 * kPage),
                          FieldsAre(0x7f0000004000, 4 * kPage, kPage),
                          FieldsAre(0x7f0000006000, 6 * kPage, kPage),
                          FieldsAre(0x7f000000f000, 15 * kPage, 2 * kPage),
                          FieldsAre(0x7f000001e000, 30 * kPage, kPage)));
  // A span cut short (a partial copy) resumes where it stopped.
  PrefetchCursor cursor;
  std::optional<PrefetchSpan> span = NextPrefetchSpan(plan, *other, cursor);
  ASSERT_TRUE(span.has_value());
  AdvancePrefetch(plan, cursor, kPage);
  span = NextPrefetchSpan(plan, *other, cursor);
  ASSERT_TRUE(span.has_value());
  EXPECT_THAT(*span, FieldsAre(0x7f0000001000, kPage, kPage));
  // A set recorded in other pages (2 MiB): nothing applies.
  WorkingSet huge = Pages({0});
  huge.set_page_size(2 << 20);
  EXPECT_TRUE(AllSpans(PrefetchPlan(huge, 1 << 20), *table).empty());
}

}  // namespace
}  // namespace fcvm::uffd
