#include "uffd/region_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

MemoryRegion R(uint64_t base, uint64_t size, uint64_t offset) {
  return {base, size, offset, 4096};
}

TEST(RegionTableTest, FindsTheRegionOfEveryAddressAndNoneOutside) {
  // Given out of order, as nothing promises they are sorted.
  absl::StatusOr<RegionTable> table = RegionTable::Create(
      {R(0x7f0000100000, 0x3000, 0x1000), R(0x7f0000000000, 0x1000, 0)});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->total_bytes(), 0x4000u);
  EXPECT_EQ(table->Find(0x7effffffffff), nullptr);
  const MemoryRegion* first = table->Find(0x7f0000000000);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->offset, 0u);
  EXPECT_EQ(table->Find(0x7f0000000fff), first);
  EXPECT_EQ(table->Find(0x7f0000001000), nullptr);  // The gap.
  const MemoryRegion* second = table->Find(0x7f0000102abc);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(RegionTable::FileOffset(*second, 0x7f0000102abc), 0x3abcu);
  EXPECT_EQ(table->Find(0x7f0000103000), nullptr);  // One past the end.
}

TEST(RegionTableTest, FindsTheRegionOfAFileOffset) {
  // Out of order in memory and in the file.
  absl::StatusOr<RegionTable> table =
      RegionTable::Create({R(0x900000, 0x2000, 0x4000), R(0x100000, 0x2000, 0),
                           R(0x500000, 0x1000, 0x2000)});
  ASSERT_TRUE(table.ok()) << table.status();
  const MemoryRegion* first = table->FindByFileOffset(0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->base, 0x100000u);
  EXPECT_EQ(table->FindByFileOffset(0x1fff), first);
  ASSERT_NE(table->FindByFileOffset(0x2000), nullptr);
  EXPECT_EQ(table->FindByFileOffset(0x2000)->base, 0x500000u);
  EXPECT_EQ(table->FindByFileOffset(0x3000), nullptr);  // No region maps it.
  ASSERT_NE(table->FindByFileOffset(0x5fff), nullptr);
  EXPECT_EQ(table->FindByFileOffset(0x5fff)->base, 0x900000u);
  EXPECT_EQ(table->FindByFileOffset(0x6000), nullptr);  // Past the last.
}

TEST(RegionTableTest, RefusesOverlaps) {
  absl::StatusOr<RegionTable> table =
      RegionTable::Create({R(0x10000, 0x2000, 0), R(0x11000, 0x1000, 0)});
  ASSERT_FALSE(table.ok());
  EXPECT_THAT(table.status().message(),
              HasSubstr("regions overlap: [0x10000, 0x12000) and [0x11000"));
  // Touching is fine.
  EXPECT_TRUE(
      RegionTable::Create({R(0x10000, 0x1000, 0), R(0x11000, 0x1000, 0)}).ok());
}

}  // namespace
}  // namespace fcvm::uffd
