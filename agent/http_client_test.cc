#include "agent/http_client.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;

TEST(HttpClientTest, ParsesStatusHeadersAndBodyByLength) {
  absl::StatusOr<HttpResponse> response = ParseHttpResponse(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing:  a b "
      "\r\n\r\nhelloextra");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->Header("x-thing"), "a b");
  EXPECT_EQ(response->Header("missing"), "");
}

TEST(HttpClientTest, BodyWithoutLengthRunsToTheEnd) {
  absl::StatusOr<HttpResponse> response =
      ParseHttpResponse("HTTP/1.0 404 Not Found\r\n\r\nnope");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, "nope");
}

TEST(HttpClientTest, MalformedResponsesAreDataLoss) {
  for (const char* raw : {
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",      // headers cut
           "SSH-2.0-OpenSSH\r\n\r\n",                       // not HTTP
           "HTTP/1.1 2000 OK\r\n\r\n",                      // status
           "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",           // header
           "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",  // length
           "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
       }) {
    absl::StatusOr<HttpResponse> response = ParseHttpResponse(raw);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kDataLoss) << raw;
  }
}

TEST(HttpClientTest, RefusesNonLiteralAddresses) {
  absl::StatusOr<HttpResponse> response =
      HttpCall({"metadata.internal", 80}, HttpRequest(), absl::Seconds(1));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(response.status().message(), HasSubstr("not an IPv4 address"));
}

}  // namespace
}  // namespace fcvm::agent
