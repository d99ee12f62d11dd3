#include "runner/vm/console.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/report.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleReader Reader(const std::string& prefix, uint64_t cap = 1 << 20) {
    return ConsoleReader(
        *RotatingLog::Open(Tmp(prefix + "console.log"), cap),
        *RotatingLog::Open(Tmp(prefix + "container.log"), cap),
        [this](const agent::AgentEvent& e) {
          events_.push_back(agent::AgentEvent::Kind_Name(e.kind()));
        });
  }
  std::vector<std::string> events_;
};

TEST_F(ConsoleTest, FramesSplitAcrossReadsAreDecoded) {
  ConsoleReader reader = Reader("a-");
  agent::AgentEvent ready;
  ready.set_kind(agent::AgentEvent::READY);
  const std::string console = absl::StrCat(
      "[    0.5] kernel says hi\r\n", agent::FrameEvent(ready),
      agent::FrameLine("out", "hello from the container"), "no newline yet");
  // One byte at a time: the worst split there is.
  for (char c : console) ASSERT_TRUE(reader.Feed(std::string(1, c)).ok());
  EXPECT_THAT(events_, ElementsAre("READY"));
  EXPECT_EQ(*ReadFile(Tmp("a-container.log")), "hello from the container\n");
  EXPECT_EQ(*ReadFile(Tmp("a-console.log")), console);
  EXPECT_EQ(reader.buffered(), 14u);
}

// A guest that never sends a newline cannot make the supervisor buffer
// without bound: the line is cut at kMaxLine.
TEST_F(ConsoleTest, ALineWithoutNewlineIsCutAtTheCap) {
  ConsoleReader reader = Reader("b-", 1 << 20);
  const std::string chunk(4096, 'x');
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(reader.Feed(chunk).ok());
    ASSERT_LE(reader.buffered(), ConsoleReader::kMaxLine);
  }
  EXPECT_EQ(reader.cut_lines(), 100 * 4096 / ConsoleReader::kMaxLine);
  // And console.log stays within its cap (and one rotated file).
  EXPECT_LE(ReadFile(Tmp("b-console.log"))->size(), 1u << 20);
}

}  // namespace
}  // namespace fcvm::runner
