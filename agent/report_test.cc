#include "agent/report.h"

#include <unistd.h>

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
