#include "runner/vm/usage.h"

#include <unistd.h>

#include "gtest/gtest.h"
#include "runner/state/process.h"

namespace fcvm::runner {
namespace {

TEST(UsageTest, ParsesSmapsRollup) {
  // As Linux 6.x prints it (values in kB).
  const char* text =
      "55d1c0000000-7ffd3a5f2000 ---p 00000000 00:00 0    [rollup]\n"
      "Rss:              99588 kB\n"
      "Pss:              59528 kB\n"
      "Pss_Dirty:        53890 kB\n"
      "Pss_Anon:         42036 kB\n"
      "Pss_File:         17492 kB\n"
      "Shared_Clean:     22716 kB\n"
      "Shared_Dirty:     34264 kB\n"
      "Private_Clean:      176 kB\n"
      "Private_Dirty:    42432 kB\n"
      "Referenced:       99588 kB\n";
  absl::StatusOr<MemoryUsage> usage = ParseSmapsRollup(text);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->rss_kib, 99588u);
  EXPECT_EQ(usage->pss_kib, 59528u);
  EXPECT_EQ(usage->shared_kib, 22716u + 34264u);
  EXPECT_EQ(usage->private_kib, 176u + 42432u);
  EXPECT_FALSE(ParseSmapsRollup("Rss: 1 kB\n").ok());
  EXPECT_EQ(Mib(1536), "1.5M");
}

TEST(UsageTest, ReadsAProcessOfItsOwnAndNeverAReusedPid) {
  const pid_t self = getpid();
  const uint64_t ticks = StartTicks(self);
  absl::StatusOr<MemoryUsage> usage = ReadMemoryUsage(self, ticks);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GT(usage->rss_kib, 0u);
  EXPECT_GE(usage->rss_kib, usage->pss_kib);
  EXPECT_TRUE(absl::IsNotFound(ReadMemoryUsage(self, ticks + 1).status()));
  EXPECT_TRUE(CpuTicks(self).ok());
}

}  // namespace
}  // namespace fcvm::runner
