#include "base/logging.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

class CapturingSink : public LogSink {
 public:
  void Send(LogSeverity severity, absl::string_view line) override {
    lines.emplace_back(severity, std::string(line));
  }
  std::vector<std::pair<LogSeverity, std::string>> lines;
};

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = SetLogSink(&sink_); }
  void TearDown() override {
    SetLogSink(previous_);
    SetMinLogSeverity(LogSeverity::kInfo);
  }
  CapturingSink sink_;
  LogSink* previous_ = nullptr;
};

TEST_F(LoggingTest, FormatsGlogStyleLine) {
  LOG(WARNING) << "disk " << 3 << " slow";
  ASSERT_EQ(sink_.lines.size(), 1u);
  EXPECT_EQ(sink_.lines[0].first, LogSeverity::kWarning);
  // "W1122 21:35:01.123456 4242 logging_test.cc:41] disk 3 slow"
  EXPECT_THAT(sink_.lines[0].second,
              ContainsRegex("^W[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6} "
                            "[0-9]+ logging_test\\.cc:[0-9]+\\] disk 3 slow$"));
}

TEST_F(LoggingTest, MinSeverityFilters) {
  SetMinLogSeverity(LogSeverity::kError);
  LOG(INFO) << "dropped";
  LOG(WARNING) << "dropped too";
  LOG(ERROR) << "kept";
  ASSERT_EQ(sink_.lines.size(), 1u);
  EXPECT_THAT(sink_.lines[0].second, HasSubstr("] kept"));
}

TEST_F(LoggingTest, PassingCheckLogsNothingAndEvaluatesOnce) {
  int evaluations = 0;
  CHECK(++evaluations == 1) << "never printed";
  EXPECT_EQ(evaluations, 1);
  EXPECT_TRUE(sink_.lines.empty());
}

TEST(LoggingDeathTest, FailedCheckAbortsWithCondition) {
  int x = 2;
  EXPECT_DEATH(CHECK(x == 3) << "x was " << x, "Check failed: x == 3 x was 2");
}

TEST(LoggingDeathTest, FatalAborts) {
  EXPECT_DEATH(LOG(FATAL) << "unrecoverable", "unrecoverable");
}

}  // namespace
}  // namespace fcvm
