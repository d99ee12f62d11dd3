#include "uffd/stats.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

TEST(LatencyHistogramTest, QuantilesAreBucketUpperBounds) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), absl::ZeroDuration());
  // 98 fast (3 us: bucket [2048, 4096) ns), 2 slow (1 ms).
  for (int i = 0; i < 98; ++i) h.Add(absl::Microseconds(3));
  for (int i = 0; i < 2; ++i) h.Add(absl::Milliseconds(1));
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Quantile(0.5), absl::Nanoseconds(4096));
  EXPECT_EQ(h.Quantile(0.98), absl::Nanoseconds(4096));
  // 1 ms = 1,000,000 ns: bucket [2^19, 2^20).
  EXPECT_EQ(h.Quantile(0.99), absl::Nanoseconds(1 << 20));
  EXPECT_EQ(h.Quantile(1.0), absl::Nanoseconds(1 << 20));
  // Never below the true value.
  EXPECT_GE(h.Quantile(0.99), absl::Milliseconds(1));
}

TEST(VmStatsTest, OneLine) {
  VmStats stats;
  stats.faults = 3;
  stats.fault_bytes = 3 * 4096;
  stats.prefetched_pages = 256;
  stats.prefetched_bytes = 1 << 20;
  stats.latency.Add(absl::Microseconds(5));
  const std::string line = stats.ToString();
  EXPECT_THAT(line, HasSubstr("faults 3 (12 KiB, 0 zero)"));
  EXPECT_THAT(line, HasSubstr("prefetched 256 pages (1.0 MiB)"));
  EXPECT_THAT(line, HasSubstr("p50 8.192us"));
}

}  // namespace
}  // namespace fcvm::uffd
