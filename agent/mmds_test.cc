#include "agent/mmds.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "absl/time/clock.h"
#include "agent/testing/mmds_server.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using testing::FakeMmds;
using ::testing::HasSubstr;

constexpr char kPlan[] = R"({"image":"nginx"})";

MmdsOptions Options(uint16_t port) {
  MmdsOptions options;
  options.endpoint = {"127.0.0.1", port};
  options.request_timeout = absl::Milliseconds(500);
  return options;
}

// A loopback port nobody listens on: bound, never listening.
uint16_t DeadPort(UniqueFd& holder) {
  holder.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(holder.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(holder.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

TEST(MmdsTest, TokenThenGet) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Set("/fcvm/plan", kPlan);
  MmdsClient client(Options((*server)->port()));
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlan);
  // The token is reused while it lives.
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  EXPECT_EQ((*server)->token_requests(), 1);
  EXPECT_EQ((*server)->get_requests(), 2);
  EXPECT_EQ((*server)->unauthorized(), 0);
}

TEST(MmdsTest, ExpiredTokenLeadsToANewOne) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Set("/fcvm/plan", kPlan);
  MmdsClient client(Options((*server)->port()));
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  // What a snapshot restore does: every token dies.
  (*server)->ExpireTokens();
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlan);
  EXPECT_EQ((*server)->unauthorized(), 1);
  EXPECT_EQ(client.tokens_issued(), 2);
}

TEST(MmdsTest, ForgetTokenSavesTheRoundTrip) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Set("/fcvm/plan", kPlan);
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
  EXPECT_THAT(plan.status().message(), HasSubstr("/fcvm/plan"));
}

TEST(MmdsTest, RetriesUntilTheHostFillsTheStore) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  MmdsClient client(Options((*server)->port()));
  std::thread host([&] {
    absl::SleepFor(absl::Milliseconds(300));
    (*server)->Set("/fcvm/plan", kPlan);
  });
  absl::StatusOr<std::string> plan =
      GetWithRetry(client, "/fcvm/plan", absl::Now() + absl::Seconds(10));
  host.join();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlan);
  EXPECT_GE((*server)->get_requests(), 2);
}

TEST(MmdsTest, UnreachableUntilDeadlineNamesTheLastError) {
  UniqueFd holder;
  MmdsClient client(Options(DeadPort(holder)));
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> plan =
      GetWithRetry(client, "/fcvm/plan", absl::Now() + absl::Milliseconds(400));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("Connection refused"));
  EXPECT_THAT(plan.status().message(), HasSubstr("attempts"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(MmdsTest, SlowServerTimesOutThenRecovers) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Set("/fcvm/plan", kPlan);
  (*server)->SetDelay(absl::Milliseconds(800));
  MmdsClient client(Options((*server)->port()));  // 500 ms per request.
  absl::StatusOr<std::string> plan = client.Get("/fcvm/plan");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("timed out"));
  // The server speeds up; the retrying fetch gets there.
  (*server)->SetDelay(absl::ZeroDuration());
  plan = GetWithRetry(client, "/fcvm/plan", absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(*plan, kPlan);
}

TEST(MmdsTest, TokenIsRenewedBeforeItExpires) {
  auto server = FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Set("/fcvm/plan", kPlan);
  MmdsOptions options = Options((*server)->port());
  options.token_ttl = absl::Seconds(1);
  MmdsClient client(options);
  ASSERT_TRUE(client.Get("/fcvm/plan").ok());
  absl::SleepFor(absl::Milliseconds(1100));
  // The client renews before the server's expiry is reached.
  EXPECT_TRUE(client.Get("/fcvm/plan").ok());
  EXPECT_EQ((*server)->unauthorized(), 0);
}

}  // namespace
}  // namespace fcvm::agent
