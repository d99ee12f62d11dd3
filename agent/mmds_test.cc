// The agent's MMDS client against the fake MMDS (a small copy of
// Firecracker's), filled the way the runner fills Firecracker's: with the
// runner's own PUT /mmds request. Time is a fake clock wherever the client
// waits on time (token renewal, backoff); only socket timeouts are real.
#include "agent/mmds.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "agent/plan.pb.h"
#include "agent/testing/fake_clock.h"
#include "agent/testing/mmds_server.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::agent {
namespace {

using ::testing::ElementsAre;
using testing::FakeClock;
using testing::FakeMmds;
using ::testing::HasSubstr;

// What the agent gets back: the plan's JSON mapping, as Firecracker prints
// the subtree at /fcvm/plan for "Accept: application/json" (without it, the
// answer would be the key list "image").
constexpr char kPlanJson[] = R"({"image":"nginx"})";

Plan NginxPlan() {
  Plan plan;
  plan.set_image("nginx");
  return plan;
}

// The host's side, as the runner does it: its own request, taken by the
// fake the way Firecracker's API takes it.
void PutPlan(FakeMmds& mmds, const Plan& plan) {
  absl::StatusOr<runner::firecracker::ApiRequest> request =
      runner::firecracker::MmdsPlanRequest(plan);
  ASSERT_TRUE(request.ok()) << request.status();
  const absl::Status put =
      mmds.HostRequest(request->method, request->path, request->body);
  ASSERT_TRUE(put.ok()) << put;
}

MmdsOptions Options(uint16_t port) {
  MmdsOptions options;
  options.endpoint = {"127.0.0.1", port};
  options.request_timeout = absl::Milliseconds(500);
  return options;
}

MmdsOptions Options(uint16_t port, FakeClock& clock) {
  MmdsOptions options = Options(port);
  options.clock.now = clock.NowFunction();
  options.clock.sleep = clock.SleepFunction();
  return options;
}

// A loopback port nobody listens on: bound, never listening.
uint16_t DeadPort(UniqueFd& holder) {
  holder.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  // sockaddr_in is the sockaddr of an AF_INET socket.
  EXPECT_EQ(bind(holder.get(), reinterpret_cast<sockaddr*>(&address),
                 sizeof(address)),
            0);
  EXPECT_EQ(
      getsockname(holder.get(), reinterpret_cast<sockaddr*>(&address), &length),
      0);
  EXPECT_NE(address.sin_port, 0);
  return ntohs(address.sin_port);
}

TEST(MmdsTest, TokenThenGetTheRunnersPlan) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NO_FATAL_FAILURE(PutPlan(**server, NginxPlan()));
  MmdsClient client(Options((*server)->port()));
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
  // The token is reused while it lives.
  plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
  EXPECT_EQ((*server)->token_requests(), 1);
  EXPECT_EQ((*server)->get_requests(), 2);
  EXPECT_EQ((*server)->unauthorized(), 0);
  EXPECT_EQ(client.tokens_issued(), 1);
}

TEST(MmdsTest, ExpiredTokenLeadsToANewOne) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NO_FATAL_FAILURE(PutPlan(**server, NginxPlan()));
  MmdsClient client(Options((*server)->port()));
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  // What a snapshot restore does: every token dies.
  (*server)->ExpireTokens();
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
  EXPECT_EQ((*server)->unauthorized(), 1);
  EXPECT_EQ((*server)->token_requests(), 2);
  EXPECT_EQ(client.tokens_issued(), 2);
}

TEST(MmdsTest, ForgetTokenSavesTheRoundTrip) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NO_FATAL_FAILURE(PutPlan(**server, NginxPlan()));
  MmdsClient client(Options((*server)->port()));
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  (*server)->ExpireTokens();
  client.ForgetToken();
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  EXPECT_EQ((*server)->unauthorized(), 0);
  EXPECT_EQ((*server)->token_requests(), 2);
}

TEST(MmdsTest, EmptyStoreIsNotFound) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  MmdsClient client(Options((*server)->port()));
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(plan.status().message(), "MMDS has nothing at /fcvm/plan");
}

TEST(MmdsTest, RetriesUntilTheHostFillsTheStore) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  FakeClock clock;
  MmdsOptions options = Options((*server)->port(), clock);
  // The host fills the store while the agent waits its second backoff.
  int waits = 0;
  options.clock.sleep = [&](absl::Duration wait) {
    clock.Sleep(wait);
    if (++waits == 2) PutPlan(**server, NginxPlan());
  };
  MmdsClient client(options);
  absl::StatusOr<std::string> plan =
      GetWithRetry(client, "/fcvm/plan", clock.Now() + absl::Seconds(10));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
  // 404, 50 ms, 404, 100 ms, the plan.
  EXPECT_EQ((*server)->get_requests(), 3);
  EXPECT_THAT(clock.sleeps(),
              ElementsAre(absl::Milliseconds(50), absl::Milliseconds(100)));
}

TEST(MmdsTest, UnreachableUntilDeadlineNamesTheLastError) {
  UniqueFd holder;
  FakeClock clock;
  MmdsClient client(Options(DeadPort(holder), clock));
  absl::StatusOr<std::string> plan =
      GetWithRetry(client, "/fcvm/plan", clock.Now() + absl::Milliseconds(400));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(),
              HasSubstr("no plan from MMDS after 5 attempts; last: "));
  EXPECT_THAT(plan.status().message(), HasSubstr("Connection refused"));
  // The last wait is cut to the deadline.
  EXPECT_THAT(clock.sleeps(),
              ElementsAre(absl::Milliseconds(50), absl::Milliseconds(100),
                          absl::Milliseconds(200), absl::Milliseconds(50)));
}

TEST(MmdsTest, BackoffDoublesUpToOneSecond) {
  UniqueFd holder;
  FakeClock clock;
  MmdsClient client(Options(DeadPort(holder), clock));
  absl::StatusOr<std::string> plan =
      GetWithRetry(client, "/fcvm/plan", clock.Now() + absl::Seconds(5));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("after 10 attempts"));
  EXPECT_THAT(
      clock.sleeps(),
      ElementsAre(absl::Milliseconds(50), absl::Milliseconds(100),
                  absl::Milliseconds(200), absl::Milliseconds(400),
                  absl::Milliseconds(800), absl::Seconds(1), absl::Seconds(1),
                  absl::Seconds(1), absl::Milliseconds(450)));
}

TEST(MmdsTest, SlowServerTimesOutThenRecovers) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NO_FATAL_FAILURE(PutPlan(**server, NginxPlan()));
  // Slower than the client's 500 ms timeout, whatever the machine's speed.
  (*server)->SetDelay(absl::Milliseconds(800));
  MmdsClient client(Options((*server)->port()));
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("timed out"));
  // The server speeds up; the retrying fetch gets there.
  (*server)->SetDelay(absl::ZeroDuration());
  plan = GetWithRetry(client, "/fcvm/plan", absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
}

TEST(MmdsTest, TokenIsRenewedBeforeItExpires) {
  // One clock for both sides: the fake's token expiry and the client's.
  FakeClock clock;
  auto server = FakeMmds::Start(clock.NowFunction());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NO_FATAL_FAILURE(PutPlan(**server, NginxPlan()));
  MmdsOptions options = Options((*server)->port(), clock);
  options.token_ttl = absl::Seconds(1);
  MmdsClient client(options);
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  // Most of its life left: the token is reused.
  clock.Advance(absl::Milliseconds(850));
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  EXPECT_EQ((*server)->token_requests(), 1);
  // At 1 s the first token is dead on the server; the client has already
  // renewed it (at 90 % of its life), so nothing is refused.
  clock.Advance(absl::Milliseconds(150));
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlanJson);
  EXPECT_EQ((*server)->token_requests(), 2);
  EXPECT_EQ((*server)->unauthorized(), 0);
}

}  // namespace
}  // namespace fcvm::agent
