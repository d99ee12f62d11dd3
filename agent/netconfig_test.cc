#include "agent/netconfig.h"

#include <sched.h>
#include <unistd.h>

#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// Each test runs in a network namespace of its own (made here, gone with
// the process), with a veth pair standing in for the VM's eth0.
class NetconfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET)";
    SubprocessOptions ip;
    ip.argv = {"ip",   "link", "add",  "eth0", "type",
               "veth", "peer", "name", "peer0"};
    absl::StatusOr<Subprocess::Output> out = RunCommand(ip, absl::Seconds(10));
    ASSERT_TRUE(out.ok()) << out.status();
    ip.argv = {"ip", "link", "set", "peer0", "up"};
    ASSERT_TRUE(RunCommand(ip, absl::Seconds(10)).ok());
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  }
};

TEST_F(NetconfigTest, AddressReplacedLinkLocalKept) {
  ASSERT_TRUE(SetLinkUp("eth0").ok());
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "169.254.0.2/16").ok());
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.2/30").ok());
  absl::StatusOr<std::vector<std::string>> addresses = Ipv4Addresses("eth0");
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  EXPECT_THAT(*addresses,
              UnorderedElementsAre("169.254.0.2/16", "10.200.0.2/30"));
  // A clone moves to another subnet: one address left (plus link-local).
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.6/30").ok());
  addresses = Ipv4Addresses("eth0");
  ASSERT_TRUE(addresses.ok());
  EXPECT_THAT(*addresses,
              UnorderedElementsAre("169.254.0.2/16", "10.200.0.6/30"));
  // Idempotent.
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.6/30").ok());
}

// What a restored clone forgets: learned entries go, permanent ones stay.
TEST_F(NetconfigTest, LearnedNeighboursAreForgotten) {
  ASSERT_TRUE(SetLinkUp("eth0").ok());
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.14/30").ok());
  SubprocessOptions ip;
  ip.argv = {"ip", "neigh", "replace", "10.200.0.13", "lladdr",
             "06:00:00:00:00:01", "dev", "eth0", "nud", "reachable"};
  ASSERT_TRUE(RunCommand(ip, absl::Seconds(10)).ok());
  ip.argv = {"ip", "neigh", "replace", "169.254.169.254", "lladdr",
             "06:00:00:00:00:02", "dev", "eth0", "nud", "stale"};
  ASSERT_TRUE(RunCommand(ip, absl::Seconds(10)).ok());
  ip.argv = {"ip", "neigh", "replace", "10.200.0.12", "lladdr",
             "06:00:00:00:00:03", "dev", "eth0", "nud", "permanent"};
  ASSERT_TRUE(RunCommand(ip, absl::Seconds(10)).ok());
  absl::StatusOr<int> flushed = FlushNeighbours("eth0");
  ASSERT_TRUE(flushed.ok()) << flushed.status();
  EXPECT_EQ(*flushed, 2);
  ip.argv = {"ip", "neigh", "show", "dev", "eth0"};
  absl::StatusOr<Subprocess::Output> left = RunCommand(ip, absl::Seconds(10));
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(left->stdout_data, HasSubstr("10.200.0.12 "));
  EXPECT_THAT(left->stdout_data, Not(HasSubstr("10.200.0.13 ")));
  EXPECT_THAT(left->stdout_data, Not(HasSubstr("169.254.169.254 ")));
  EXPECT_EQ(FlushNeighbours("eth0").value_or(-1), 0);
  EXPECT_FALSE(FlushNeighbours("nope0").ok());
}

TEST_F(NetconfigTest, RoutesReplaceEachOther) {
  ASSERT_TRUE(SetLinkUp("eth0").ok());
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.10/30").ok());
  ASSERT_TRUE(ReplaceRoute("169.254.169.254/32", "", "eth0").ok());
  ASSERT_TRUE(ReplaceRoute("0.0.0.0/0", "10.200.0.9", "eth0").ok());
  ASSERT_TRUE(ReplaceIpv4Address("eth0", "10.200.0.14/30").ok());
  ASSERT_TRUE(ReplaceRoute("0.0.0.0/0", "10.200.0.13", "eth0").ok());
  absl::StatusOr<std::vector<std::string>> routes = Ipv4Routes();
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_THAT(*routes, Contains("0.0.0.0/0 via 10.200.0.13 dev eth0"));
  EXPECT_THAT(*routes, Contains("169.254.169.254/32 dev eth0"));
  EXPECT_THAT(*routes, ::testing::Not(Contains(HasSubstr("10.200.0.9"))));
}

TEST_F(NetconfigTest, MacAddress) {
  ASSERT_TRUE(SetMacAddress("eth0", "06:00:0a:c8:00:02").ok());
  SubprocessOptions ip;
  // Not /sys/class/net: that sysfs shows the namespace that mounted it.
  ip.argv = {"ip", "link", "show", "eth0"};
  ip.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out = RunCommand(ip, absl::Seconds(10));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->stdout_data, HasSubstr("link/ether 06:00:0a:c8:00:02 "));
}

TEST_F(NetconfigTest, ErrorsNameTheInterfaceAndValue) {
  absl::Status status = SetLinkUp("eth9");
  EXPECT_THAT(status.message(), HasSubstr("'eth9'"));
  status = ReplaceIpv4Address("eth0", "10.0.0.1");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'10.0.0.1'"));
  // The gateway is not on any subnet of eth0: the kernel says so.
  status = ReplaceRoute("0.0.0.0/0", "192.0.2.1", "eth0");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("via 192.0.2.1 dev eth0"));
}

}  // namespace
}  // namespace fcvm::agent
