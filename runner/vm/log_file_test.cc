#include "runner/vm/log_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

TEST(RotatingLogTest, NeverHoldsMoreThanTwiceItsCap) {
  absl::StatusOr<RotatingLog> log = RotatingLog::Open(Tmp("console.log"), 100);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(log->Write(absl::StrCat("line ", i, "\n")).ok());
  }
  struct stat now, older;
  ASSERT_EQ(stat(Tmp("console.log").c_str(), &now), 0);
  ASSERT_EQ(stat(Tmp("console.log.1").c_str(), &older), 0);
  EXPECT_LE(now.st_size, 100);
  EXPECT_LE(older.st_size, 100);
  EXPECT_EQ(now.st_mode & 0777, 0600u);
  EXPECT_GT(log->rotations(), 50);
  // The newest lines are kept, in order, across the two files.
  const std::string both =
      *ReadFile(Tmp("console.log.1")) + *ReadFile(Tmp("console.log"));
  EXPECT_EQ(both.substr(both.size() - 9), "line 999\n");
  EXPECT_NE(both.find("line 990\nline 991\n"), std::string::npos);
}

TEST(RotatingLogTest, AChunkLargerThanTheCapKeepsItsEnd) {
  absl::StatusOr<RotatingLog> log = RotatingLog::Open(Tmp("big.log"), 10);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE(log->Write("0123456789abcdefghij").ok());
  EXPECT_EQ(*ReadFile(Tmp("big.log")), "abcdefghij");
}

TEST(RotatingLogTest, ReopeningContinuesTheCount) {
  {
    absl::StatusOr<RotatingLog> log = RotatingLog::Open(Tmp("re.log"), 10);
    ASSERT_TRUE(log->Write("12345678").ok());
  }
  absl::StatusOr<RotatingLog> log = RotatingLog::Open(Tmp("re.log"), 10);
  ASSERT_TRUE(log->Write("abc").ok());  // 8 + 3 > 10: rotates first.
  EXPECT_EQ(*ReadFile(Tmp("re.log.1")), "12345678");
  EXPECT_EQ(*ReadFile(Tmp("re.log")), "abc");
  EXPECT_FALSE(RotatingLog::Open(Tmp("zero.log"), 0).ok());
}

}  // namespace
}  // namespace fcvm::runner
