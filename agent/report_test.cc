#include "agent/report.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;

TEST(ReportTest, TextLinesAreFramedAndEscaped) {
  EXPECT_EQ(FrameLine("out", "hello\tworld"), "@fcvm out hello\tworld\n");
  // A container cannot end the line early, or forge a frame of its own.
  EXPECT_EQ(FrameLine("out", "a\nb\r\x1b[31m"),
            "@fcvm out a\\x0ab\\x0d\\x1b[31m\n");
  EXPECT_EQ(FrameLine("err", "@fcvm status {}"), "@fcvm err @fcvm status {}\n");
}

TEST(ReportTest, BackslashesAreDoubledSoEscapesCannotBeForged) {
  EXPECT_EQ(FrameLine("out", R"(C:\dir)"), "@fcvm out C:\\\\dir\n");
  // A literal "\x1b" and a real ESC frame differently...
  const std::string literal = FrameLine("out", R"(\x1b)");
  const std::string escape = FrameLine("out", "\x1b");
  EXPECT_EQ(literal, "@fcvm out \\\\x1b\n");
  EXPECT_EQ(escape, "@fcvm out \\x1b\n");
  // ...and parse back to what they were.
  std::string kind, payload;
  ASSERT_TRUE(ParseFrame(literal, &kind, &payload));
  EXPECT_EQ(payload, R"(\x1b)");
  ASSERT_TRUE(ParseFrame(escape, &kind, &payload));
  EXPECT_EQ(payload, "\x1b");
}

// Every framed text parses back to exactly its bytes: each byte value, and
// every short string of the characters escaping cares about.
TEST(ReportTest, EveryTextRoundTripsExactly) {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  std::vector<std::string> texts = {"", all_bytes, "trailing\r", "x\\"};
  const std::string alphabet = std::string("\\x1b\x1b\n\r", 7) + "a";
  std::vector<std::string> shorter = {""};
  for (int length = 1; length <= 4; ++length) {
    std::vector<std::string> longer;
    for (const std::string& prefix : shorter) {
      for (char c : alphabet) longer.push_back(prefix + c);
    }
    texts.insert(texts.end(), longer.begin(), longer.end());
    shorter = std::move(longer);
  }
  ASSERT_EQ(texts.size(), 4u + 8 + 64 + 512 + 4096);
  for (const std::string& text : texts) {
    const std::string line = FrameLine("out", text);
    // One line, whatever the text.
    ASSERT_EQ(line.find('\n'), line.size() - 1);
    std::string kind, payload;
    ASSERT_TRUE(ParseFrame(line, &kind, &payload));
    EXPECT_EQ(kind, "out");
    ASSERT_EQ(payload, text) << "framed as " << line;
  }
}

TEST(ReportTest, UnescapingKeepsWhatIsNotAnEscape) {
  // From an agent that did not double backslashes: kept as they stand.
  EXPECT_EQ(UnescapeFrameText(R"(a\qb)"), R"(a\qb)");
  EXPECT_EQ(UnescapeFrameText(R"(\x1)"), R"(\x1)");
  EXPECT_EQ(UnescapeFrameText(R"(\xzz)"), R"(\xzz)");
  EXPECT_EQ(UnescapeFrameText(R"(end\)"), R"(end\)");
  EXPECT_EQ(UnescapeFrameText(R"(\x7F\x0a)"), "\x7f\n");
}

TEST(ReportTest, EventJsonWithQuotesAndBackslashesSurvivesTheFrame) {
  AgentEvent event;
  event.set_kind(AgentEvent::ERROR);
  event.set_message("plan: image: 'a b' has a space; say \"hi\" in C:\\tmp\n");
  const std::string line = FrameEvent(event);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  std::string kind, payload;
  ASSERT_TRUE(ParseFrame(line, &kind, &payload));
  AgentEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(payload, &back).ok())
      << payload;
  EXPECT_EQ(back.message(), event.message());
}

TEST(ReportTest, FramesSplitBackFromKernelMessages) {
  std::string kind, payload;
  EXPECT_TRUE(ParseFrame("@fcvm out GET / 200\r\n", &kind, &payload));
  EXPECT_EQ(kind, "out");
  EXPECT_EQ(payload, "GET / 200");
  EXPECT_FALSE(
      ParseFrame("[    1.234567] virtio_blk virtio1: [vdb]", &kind, &payload));
  EXPECT_FALSE(ParseFrame("@fcvm", &kind, &payload));
}

TEST(ReportTest, EventsAreProtobufJsonOnOneLine) {
  AgentEvent event;
  event.set_kind(AgentEvent::EXITED);
  event.set_exit_code(3);
  event.set_message("exited with status 3");
  const std::string line = FrameEvent(event);
  std::string kind, payload;
  ASSERT_TRUE(ParseFrame(line, &kind, &payload));
  EXPECT_EQ(kind, "status");
  AgentEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(payload, &back).ok());
  EXPECT_EQ(back.kind(), AgentEvent::EXITED);
  EXPECT_EQ(back.exit_code(), 3);
}

TEST(ReportTest, ReporterWritesConsoleAndStream) {
  absl::StatusOr<Pipe> console = MakePipe();
  absl::StatusOr<Pipe> stream = MakePipe();
  ASSERT_TRUE(console.ok() && stream.ok());
  Reporter reporter(console->write.get());
  reporter.AttachStream(std::move(stream->write));
  AgentEvent event;
  event.set_kind(AgentEvent::READY);
  reporter.Event(event);
  reporter.Output("out", "line");
  reporter.DropStream();
  reporter.Log("console only");
  console->write.reset();
  absl::StatusOr<std::string> on_console = ReadAll(console->read.get(), "c");
  absl::StatusOr<std::string> on_stream = ReadAll(stream->read.get(), "s");
  ASSERT_TRUE(on_console.ok() && on_stream.ok());
  EXPECT_THAT(*on_console, HasSubstr(R"("kind":"READY")"));
  EXPECT_THAT(*on_console, HasSubstr("\"uptimeMs\""));
  EXPECT_THAT(*on_console,
              HasSubstr("@fcvm out line\n@fcvm log console only\n"));
  EXPECT_THAT(*on_stream, HasSubstr(R"("kind":"READY")"));
  EXPECT_THAT(*on_stream, ::testing::EndsWith("@fcvm out line\n"));
}

}  // namespace
}  // namespace fcvm::agent
