// The fake MMDS over real HTTP: the store's answers arrive as sent, the
// host API takes only what Firecracker's would, and the counters count.
#include "agent/testing/mmds_server.h"

#include "agent/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent::testing {
namespace {

HttpResponse Call(const FakeMmds& mmds, HttpRequest request) {
  absl::StatusOr<HttpResponse> response =
      HttpCall({"127.0.0.1", mmds.port()}, request, absl::Seconds(10));
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *std::move(response) : HttpResponse();
}

TEST(FakeMmdsTest, ServesTheStoreOverHttp) {
  absl::StatusOr<std::unique_ptr<FakeMmds>> mmds = FakeMmds::Start();
  ASSERT_TRUE(mmds.ok()) << mmds.status();
  FakeMmds& server = **mmds;
  ASSERT_TRUE(
      server.HostRequest("PUT", "/mmds", R"({"fcvm":{"plan":{"image":"x"}}})")
          .ok());

  HttpRequest token;
  token.method = "PUT";
  token.path = "/latest/api/token";
  token.headers = {{"X-metadata-token-ttl-seconds", "60"}};
  HttpResponse issued = Call(server, token);
  ASSERT_EQ(issued.status, 200) << issued.body;
  EXPECT_EQ(issued.Header("content-type"), "text/plain");

  HttpRequest get;
  get.path = "/fcvm/plan";
  get.headers = {{"X-metadata-token", issued.body},
                 {"Accept", "application/json"}};
  HttpResponse plan = Call(server, get);
  EXPECT_EQ(plan.status, 200);
  EXPECT_EQ(plan.Header("content-type"), "application/json");
  EXPECT_EQ(plan.body, R"({"image":"x"})");

  get.headers = {{"X-metadata-token", "stale"}};
  HttpResponse refused = Call(server, get);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.body, "MMDS token not valid.");

  EXPECT_EQ(server.token_requests(), 1);
  EXPECT_EQ(server.get_requests(), 2);
  EXPECT_EQ(server.unauthorized(), 1);
  EXPECT_TRUE(server.AwaitAnsweredGets(2, absl::ZeroDuration()));
  EXPECT_FALSE(server.AwaitAnsweredGets(3, absl::Milliseconds(1)));
}

TEST(FakeMmdsTest, HostRequestsAreFirecrackersMmdsResource) {
  absl::StatusOr<std::unique_ptr<FakeMmds>> mmds = FakeMmds::Start();
  ASSERT_TRUE(mmds.ok()) << mmds.status();
  FakeMmds& server = **mmds;
  absl::Status patch = server.HostRequest("PATCH", "/mmds", R"({"a":1})");
  EXPECT_EQ(patch.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(server.HostRequest("PUT", "/mmds", R"({"a":1})").ok());
  ASSERT_TRUE(server.HostRequest("PATCH", "/mmds", R"({"b":2})").ok());
  EXPECT_EQ(server.store().Get(), R"({"a":1,"b":2})");
  absl::Status other = server.HostRequest("PUT", "/mmds/config", "{}");
  EXPECT_EQ(other.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(other.message(),
            "the fake MMDS takes PUT or PATCH /mmds, not PUT /mmds/config");
  EXPECT_EQ(server.HostRequest("GET", "/mmds", "").code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace fcvm::agent::testing
