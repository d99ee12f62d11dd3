#include "runner/net/subnet.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

TEST(SubnetTest, AddressesOfAVmSubnet) {
  absl::StatusOr<Subnet> s = ParseSubnet("10.213.0.4/30");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Cidr(), "10.213.0.4/30");
  EXPECT_EQ(s->HostIp(), "10.213.0.5");
  EXPECT_EQ(s->GuestIp(), "10.213.0.6");
  EXPECT_EQ(s->GuestCidr(), "10.213.0.6/30");
  EXPECT_EQ(s->GuestMac(), "06:00:0a:d5:00:06");
}

TEST(SubnetTest, ParseErrorsSayWhatIsWrong) {
  EXPECT_THAT(ParseSubnet("10.213.0.0").status().message(),
              HasSubstr("not an IPv4 subnet"));
  EXPECT_THAT(ParseSubnet("10.213.0.0/33").status().message(),
              HasSubstr("not an IPv4 subnet"));
  EXPECT_THAT(ParseSubnet("10.213.0.1/24").status().message(),
              HasSubstr("host bits set (the network is 10.213.0.0/24)"));
}

TEST(SubnetTest, AllocationSkipsWhatIsTakenAndNeverCollides) {
  const Subnet pool = *ParseSubnet("10.213.0.0/24");
  std::vector<std::string> used;
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<Subnet> next = AllocateSubnet(pool, used);
    ASSERT_TRUE(next.ok()) << i << ": " << next.status();
    EXPECT_TRUE(seen.insert(next->Cidr()).second) << next->Cidr();
    used.push_back(next->Cidr());
  }
  absl::Status full = AllocateSubnet(pool, used).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("all 64 /30 subnets"));
  // A freed subnet in the middle is reused first.
  used.erase(used.begin() + 10);
  EXPECT_EQ(AllocateSubnet(pool, used)->Cidr(), "10.213.0.40/30");
}

TEST(SubnetTest, LargerRecordedSubnetsBlockEverythingInside) {
  const Subnet pool = *ParseSubnet("10.213.0.0/28");
  EXPECT_EQ(AllocateSubnet(pool, {"10.213.0.0/29"})->Cidr(), "10.213.0.8/30");
  EXPECT_THAT(AllocateSubnet(pool, {"banana"}).status().message(),
              HasSubstr("a VM's recorded subnet"));
  EXPECT_FALSE(AllocateSubnet(*ParseSubnet("10.0.0.0/31"), {}).ok());
}

}  // namespace
}  // namespace fcvm::runner
