#include "channel/frame.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::channel {
namespace {

using ::testing::ElementsAre;

Frame HelloFrame(absl::string_view role) {
  Frame frame;
  Hello& hello = *frame.mutable_hello();
  hello.set_version(kProtocolVersion);
  hello.set_role(std::string(role));
  hello.set_instance(std::string("0123456789abcdef"));
  hello.set_reply(true);
  return frame;
}

Frame DataFrame(uint64_t seq, absl::string_view bytes) {
  Frame frame;
  frame.set_seq(seq);
  frame.set_ack(7);
  Data& data = *frame.mutable_data();
  data.set_session(3);
  data.set_stream(STDOUT);
  data.set_data(std::string(bytes));
  return frame;
}

// A header with our magic, `version` and `length`.
std::string Header(uint8_t version, uint32_t length) {
  std::string out = "FCV";
  out += static_cast<char>(version);
  out += static_cast<char>(length >> 24);
  out += static_cast<char>(length >> 16);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length);
  return out;
}

// What Next() returns, in a form tests can compare: a frame's text, or the
// error's code and message.
std::string Describe(const absl::StatusOr<std::optional<Frame>>& next) {
  if (!next.ok()) return next.status().ToString();
  if (!next->has_value()) return "(more)";
  return absl::StrCat("frame{", (*next)->ShortDebugString(), "}");
}

std::string Describe(const Frame& frame) {
  return absl::StrCat("frame{", frame.ShortDebugString(), "}");
}

// Every result of Next() up to (not including) the first "need more".
std::vector<std::string> Drain(FrameReader& reader) {
  std::vector<std::string> out;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::optional<Frame>> next = reader.Next();
    if (next.ok() && !next->has_value()) return out;
    out.push_back(Describe(next));
  }
  ADD_FAILURE() << "Next() did not run out of bytes after 1000 calls";
  return out;
}

// A binary payload with our own header inside it, and every byte value.
std::string BinaryPayload() {
  std::string bytes = absl::StrCat("FCV\x01", Header(1, 3), "FCV");
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  bytes += std::string("\0FCV\x01\0\0\0\x05", 9);
  return bytes;
}

TEST(EncodeFrameTest, WritesTheHeaderThenTheProtobuf) {
  const Frame data = DataFrame(1, BinaryPayload());
  const std::string payload = data.SerializeAsString();
  ASSERT_GT(payload.size(), 256u);
  EXPECT_EQ(EncodeFrame(data), Header(1, payload.size()) + payload);
  EXPECT_EQ(EncodeFrame(Frame()), std::string("FCV\x01\0\0\0\0", 8));
}

TEST(FrameReaderTest, RoundTripsHelloDataWithOurMagicInsideAndAnEmptyFrame) {
  const Frame hello = HelloFrame("hub");
  const Frame data = DataFrame(1, BinaryPayload());
  const Frame empty;
  FrameReader reader;
  reader.Feed(EncodeFrame(hello));
  reader.Feed(EncodeFrame(data));
  reader.Feed(EncodeFrame(empty));

  absl::StatusOr<std::optional<Frame>> next = reader.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->SerializeAsString(), hello.SerializeAsString());
  EXPECT_EQ((*next)->hello().instance(), "0123456789abcdef");

  next = reader.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->data().data(), BinaryPayload());
  EXPECT_EQ((*next)->SerializeAsString(), data.SerializeAsString());

  next = reader.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->body_case(), Frame::BODY_NOT_SET);
  EXPECT_EQ((*next)->seq(), 0u);

  next = reader.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_FALSE(reader.resyncing());
}

TEST(FrameReaderTest, FramesSplitByteByByteComeOutAtTheirLastByte) {
  const std::string first = EncodeFrame(HelloFrame("agent"));
  const std::string second = EncodeFrame(DataFrame(1, BinaryPayload()));
  const std::string third = EncodeFrame(Frame());
  const std::string stream = first + second + third;
  FrameReader reader;
  std::vector<size_t> ends;
  std::vector<std::string> frames;
  for (size_t i = 0; i < stream.size(); ++i) {
    reader.Feed(stream.substr(i, 1));
    for (const std::string& got : Drain(reader)) {
      ends.push_back(i + 1);
      frames.push_back(got);
    }
  }
  EXPECT_THAT(ends, ElementsAre(first.size(), first.size() + second.size(),
                                stream.size()));
  EXPECT_THAT(frames,
              ElementsAre(Describe(HelloFrame("agent")),
                          Describe(DataFrame(1, BinaryPayload())), "frame{}"));
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, SeveralFramesInOneFeed) {
  std::string stream;
  std::vector<std::string> want;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    const Frame frame = DataFrame(seq, absl::StrCat("chunk ", seq));
    stream += EncodeFrame(frame);
    want.push_back(Describe(frame));
  }
  FrameReader reader;
  reader.Feed(stream);
  EXPECT_EQ(Drain(reader), want);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, AHeaderAloneWaitsForItsPayload) {
  const std::string frame = EncodeFrame(DataFrame(1, "abc"));
  FrameReader reader;
  reader.Feed(frame.substr(0, kHeaderBytes));
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  EXPECT_EQ(reader.buffered(), kHeaderBytes);
  reader.Feed(frame.substr(kHeaderBytes, frame.size() - kHeaderBytes - 1));
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  reader.Feed(frame.substr(frame.size() - 1));
  EXPECT_EQ(Describe(reader.Next()), Describe(DataFrame(1, "abc")));
}

TEST(FrameReaderTest, BadMagicIsDataLossThenOnlyTheNextHelloComes) {
  FrameReader reader;
  reader.Feed("XCV\x01");
  // Frames before the peer's new start are skipped whole, even one whose
  // payload holds a Hello of its own.
  reader.Feed(EncodeFrame(DataFrame(5, "skipped")));
  reader.Feed(EncodeFrame(DataFrame(6, EncodeFrame(HelloFrame("inner")))));
  reader.Feed(EncodeFrame(Frame()));
  reader.Feed(EncodeFrame(HelloFrame("agent")));
  reader.Feed(EncodeFrame(DataFrame(1, "after")));

  absl::StatusOr<std::optional<Frame>> next = reader.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(next.status().message(), "bad frame: no FCV header");
  EXPECT_TRUE(reader.resyncing());

  EXPECT_EQ(Drain(reader), (std::vector<std::string>{
                               Describe(HelloFrame("agent")),
                               Describe(DataFrame(1, "after")),
                           }));
  EXPECT_FALSE(reader.resyncing());
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, AShortStreamThatCannotBeMagicIsRefusedAtOnce) {
  FrameReader reader;
  reader.Feed("F");
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  reader.Feed("X");
  EXPECT_EQ(Describe(reader.Next()), "DATA_LOSS: bad frame: no FCV header");
}

TEST(FrameReaderTest, AnUnknownVersionIsRefused) {
  const std::string payload = HelloFrame("agent").SerializeAsString();
  FrameReader reader;
  reader.Feed(Header(2, payload.size()) + payload);
  reader.Feed(EncodeFrame(HelloFrame("agent")));
  EXPECT_EQ(Drain(reader),
            (std::vector<std::string>{
                "DATA_LOSS: bad frame: protocol version 2, this end speaks 1",
                Describe(HelloFrame("agent")),
            }));
}

TEST(FrameReaderTest, ALengthOverTheLimitIsRefusedBeforeThePayloadArrives) {
  FrameReader reader;
  reader.Feed(Header(1, kMaxPayloadBytes + 1));
  EXPECT_EQ(Describe(reader.Next()),
            "DATA_LOSS: bad frame: 262145 bytes, more than the 262144 allowed");
  EXPECT_TRUE(reader.resyncing());
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  EXPECT_EQ(reader.buffered(), 3u);  // What may be the start of a magic.
}

TEST(FrameReaderTest, ALengthAtTheLimitIsAwaited) {
  FrameReader reader;
  reader.Feed(Header(1, kMaxPayloadBytes));
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  EXPECT_FALSE(reader.resyncing());
  EXPECT_EQ(reader.buffered(), kHeaderBytes);
}

TEST(FrameReaderTest, APayloadThatIsNotAFrameIsRefused) {
  FrameReader reader;
  // A varint tag that never ends.
  reader.Feed(Header(1, 2) + "\xff\xff");
  reader.Feed(EncodeFrame(DataFrame(2, "skipped")));
  reader.Feed(EncodeFrame(HelloFrame("agent")));
  EXPECT_EQ(Drain(reader), (std::vector<std::string>{
                               "DATA_LOSS: bad frame: 2 bytes that are not a "
                               "Frame",
                               Describe(HelloFrame("agent")),
                           }));
}

TEST(FrameReaderTest, GarbageThenAHello) {
  FrameReader reader;
  reader.Feed("this is not a frame at all, FC, FCV, FCV\x02");
  reader.Feed(EncodeFrame(HelloFrame("hub")));
  EXPECT_EQ(Drain(reader), (std::vector<std::string>{
                               "DATA_LOSS: bad frame: no FCV header",
                               Describe(HelloFrame("hub")),
                           }));
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, ErrorsWhileResynchronisingAreNotReportedAgain) {
  const std::string payload = HelloFrame("old").SerializeAsString();
  FrameReader reader;
  reader.Feed("junk");
  EXPECT_EQ(Describe(reader.Next()), "DATA_LOSS: bad frame: no FCV header");
  // Each of these alone is an error; while resynchronising none is said.
  reader.Feed("more junk");
  reader.Feed(Header(2, payload.size()) + payload);
  reader.Feed(Header(1, kMaxPayloadBytes + 1));
  reader.Feed(Header(1, 2) + "\xff\xff");
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  EXPECT_TRUE(reader.resyncing());
  reader.Feed(EncodeFrame(HelloFrame("agent")));
  // After the Hello the reader is in step again: the next error is said.
  reader.Feed("junk again");
  EXPECT_EQ(Drain(reader), (std::vector<std::string>{
                               Describe(HelloFrame("agent")),
                               "DATA_LOSS: bad frame: no FCV header",
                           }));
}

TEST(FrameReaderTest, APartialMagicAtTheEndIsKeptWhileResynchronising) {
  const std::string hello = EncodeFrame(HelloFrame("agent"));
  FrameReader reader;
  reader.Feed("garbage");
  EXPECT_EQ(Describe(reader.Next()), "DATA_LOSS: bad frame: no FCV header");
  reader.Feed(absl::StrCat("junk", hello.substr(0, 2)));  // "...FC"
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  EXPECT_EQ(reader.buffered(), 3u);  // "kFC": at most a magic's worth.
  reader.Feed(hello.substr(2, 1));   // "V"
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  reader.Feed(hello.substr(3));
  EXPECT_EQ(Drain(reader),
            (std::vector<std::string>{Describe(HelloFrame("agent"))}));
  EXPECT_FALSE(reader.resyncing());
}

TEST(FrameReaderTest,
     AMagicFollowedByAnotherVersionIsNoHeaderWhileResynchronising) {
  FrameReader reader;
  reader.Resync();
  reader.Feed("xxFCV");
  EXPECT_EQ(Describe(reader.Next()), "(more)");
  reader.Feed(absl::StrCat("\x02", EncodeFrame(HelloFrame("agent"))));
  EXPECT_EQ(Drain(reader),
            (std::vector<std::string>{Describe(HelloFrame("agent"))}));
}

TEST(FrameReaderTest, ResyncSkipsTheTailOfAnOldFrameAndFramesUpToAHello) {
  const std::string old = EncodeFrame(DataFrame(9, "the old stream's tail"));
  FrameReader reader;
  reader.Resync();
  EXPECT_TRUE(reader.resyncing());
  reader.Feed(old.substr(11));
  reader.Feed(EncodeFrame(DataFrame(10, "before the hello")));
  reader.Feed(EncodeFrame(HelloFrame("hub")));
  reader.Feed(EncodeFrame(DataFrame(1, "new")));
  // No error: a resync asked for is not a fault of the bytes.
  EXPECT_EQ(Drain(reader), (std::vector<std::string>{
                               Describe(HelloFrame("hub")),
                               Describe(DataFrame(1, "new")),
                           }));
}

}  // namespace
}  // namespace fcvm::channel
