#include "runner/api/connect.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace fcvm::runner::api {
namespace {

// The Start request the SDK 2.51.0 sent, as captured (e2b-compat.md §3.6).
constexpr char kStartJson[] =
    R"({"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi; echo oops >&2"]},"stdin":false})";

TEST(Envelope, HeaderIsFlagsAndBigEndianLength) {
  const std::string e = Envelope(kEnvelopeMessage, kStartJson);
  ASSERT_EQ(e.size(), 5 + sizeof(kStartJson) - 1);
  EXPECT_EQ(e[0], 0);
  EXPECT_EQ(static_cast<uint8_t>(e[4]), 0x59);  // 89 bytes, as captured.
  EXPECT_EQ(e.substr(5), kStartJson);
  const std::string end = Envelope(kEnvelopeEndStream, "{}");
  EXPECT_EQ(end, std::string("\x02\x00\x00\x00\x02{}", 7));
}

TEST(ParseRequestEnvelope, TheCapturedRequestParses) {
  auto payload =
      ParseRequestEnvelope(Envelope(kEnvelopeMessage, kStartJson), 1 << 20);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(*payload, kStartJson);
  auto empty = ParseRequestEnvelope(Envelope(kEnvelopeMessage, ""), 1 << 20);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(ParseRequestEnvelope, EveryMalformedBodyIsRefusedSayingWhy) {
  const std::string good = Envelope(kEnvelopeMessage, "{}");
  struct Case {
    std::string body;
    const char* says;
  };
  for (const Case& c : {
           Case{"", "0 bytes"},
           Case{std::string("\0\0\0", 3), "header alone is 5"},
           Case{good.substr(0, 6), "declares 2 bytes but 1 follow"},
           Case{good + "x", "1 bytes after"},
           Case{good + good, "7 bytes after"},
           Case{Envelope(kEnvelopeCompressed, "{}"), "compressed"},
           Case{Envelope(kEnvelopeEndStream, "{}"), "flags are 0x2"},
           Case{Envelope(0x80, "{}"), "flags are 0x80"},
           Case{std::string("\0\xff\xff\xff\xff", 5), "over the limit"},
       }) {
    auto parsed = ParseRequestEnvelope(c.body, 1 << 20);
    ASSERT_FALSE(parsed.ok()) << c.says;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), c.says))
        << parsed.status();
  }
}

TEST(EnvelopeReader, SplitsAStreamArrivingByteByByte) {
  const std::string stream =
      Envelope(kEnvelopeMessage, R"({"event":{"start":{"pid":1000}}})") +
      Envelope(kEnvelopeMessage, R"({"event":{"data":{"stdout":"aGkK"}}})") +
      Envelope(kEnvelopeEndStream, "{}");
  EnvelopeReader reader(1 << 20);
  std::vector<ParsedEnvelope> got;
  for (char c : stream) {
    reader.Append(std::string(1, c));
    auto next = reader.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (next->has_value()) got.push_back(**next);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, R"({"event":{"start":{"pid":1000}}})");
  EXPECT_EQ(got[2].flags, kEnvelopeEndStream);
  EXPECT_EQ(got[2].payload, "{}");
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(EnvelopeReader, RefusesUnknownFlagsAndOversizedPayloads) {
  EnvelopeReader flags(100);
  flags.Append(Envelope(0x10, "{}"));
  EXPECT_FALSE(flags.Next().ok());
  EnvelopeReader big(100);
  big.Append(Envelope(kEnvelopeMessage, std::string(101, 'x')));
  auto next = big.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(absl::StrContains(next.status().message(), "101 bytes"));
}

TEST(ConnectCodes, NamesAndHttpStatusesFollowTheSpec) {
  EXPECT_EQ(ConnectCodeName(absl::StatusCode::kNotFound), "not_found");
  EXPECT_EQ(ConnectCodeName(absl::StatusCode::kCancelled), "canceled");
  EXPECT_EQ(ConnectCodeName(absl::StatusCode::kUnauthenticated),
            "unauthenticated");
  EXPECT_EQ(ConnectHttpStatus(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(ConnectHttpStatus(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(ConnectHttpStatus(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(ConnectHttpStatus(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(ConnectHttpStatus(absl::StatusCode::kAlreadyExists), 409);
  for (int code = 1; code <= 16; ++code) {
    const auto status_code = static_cast<absl::StatusCode>(code);
    EXPECT_EQ(ConnectCodeFromName(ConnectCodeName(status_code)), status_code);
  }
  EXPECT_FALSE(ConnectCodeFromName("nope").has_value());
}

TEST(ConnectJson, ErrorAndEndStreamDocuments) {
  EXPECT_EQ(ConnectErrorJson(absl::NotFoundError("no such file: /nope")),
            R"({"code":"not_found","message":"no such file: /nope"})");
  EXPECT_EQ(EndStreamJson(absl::OkStatus()), "{}");
  EXPECT_EQ(
      EndStreamJson(absl::InvalidArgumentError("cwd \"/x\" is missing")),
      R"({"error":{"code":"invalid_argument","message":"cwd \"/x\" is missing"}})");
}

}  // namespace
}  // namespace fcvm::runner::api
