// TAPs and nftables rules for real, inside a network namespace this test
// creates for itself (unshare at start; it disappears with the process).
#include <sched.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/match.h"
#include "agent/netconfig.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"

namespace fcvm::runner::net {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(TapTest, CreateAddressDelete) {
  const std::string tap = TapName("0123456789abcdef");
  EXPECT_EQ(tap, "fc-01234567");
  ASSERT_TRUE(CreateTap(tap, "10.213.0.5/30").ok());
  EXPECT_TRUE(LinkExists(tap));
  EXPECT_THAT(ListTaps(), ElementsAre(tap));
  EXPECT_THAT(*agent::Ipv4Addresses(tap), ElementsAre("10.213.0.5/30"));
  EXPECT_EQ(*ReadFile("/proc/sys/net/ipv4/conf/" + tap + "/route_localnet"),
            "1\n");
  EXPECT_EQ(*ReadFile("/proc/sys/net/ipv4/ip_forward"), "1\n");
  absl::Status again = CreateTap(tap, "10.213.0.5/30");
  EXPECT_THAT(again.message(), HasSubstr("exists already"));
  ASSERT_TRUE(DeleteTap(tap).ok());
  EXPECT_FALSE(LinkExists(tap));
  EXPECT_TRUE(ListTaps().empty());
  EXPECT_TRUE(DeleteTap(tap).ok());  // Gone is fine.
  EXPECT_THAT(CreateTap("a-name-longer-than-fifteen", "10.0.0.1/30").message(),
              HasSubstr("must be 1 to 15 characters"));
}

VmRules Rules(const std::string& id, const std::string& tap,
              const std::string& subnet, const std::string& guest,
              uint32_t host_port) {
  VmRules rules{VmTableName(id), tap, subnet, guest, {}};
  PublishedPort port;
  port.set_host_port(host_port);
  port.set_guest_port(80);
  port.set_protocol("tcp");
  rules.ports.push_back(port);
  return rules;
}

TEST(NftTest, EachVmHasATableOfItsOwnCreatedAndDeletedWhole) {
  const VmRules web = Rules("00000000000000aa", "fc-aaaaaaaa", "10.213.0.4/30",
                            "10.213.0.6", 8080);
  const VmRules db = Rules("00000000000000bb", "fc-bbbbbbbb", "10.213.0.8/30",
                           "10.213.0.10", 5432);
  ASSERT_TRUE(CreateVmTable(web).ok());
  ASSERT_TRUE(CreateVmTable(db).ok());
  absl::StatusOr<std::string> table = ListTable(web.table);
  ASSERT_TRUE(table.ok()) << table.status();
  std::cout << *table;
  EXPECT_THAT(*table, HasSubstr("table ip fcvm-00000000000000aa"));
  EXPECT_THAT(*table, HasSubstr("tcp dport 8080 dnat to 10.213.0.6:80"));
  EXPECT_THAT(*table, Not(HasSubstr("5432")));
  EXPECT_THAT(*ListTable(db.table),
              HasSubstr("ip saddr 10.213.0.8/30 oifname != \"fc-bbbbbbbb\" "
                        "masquerade"));
  // The same VM twice is refused: an id names one VM.
  EXPECT_FALSE(CreateVmTable(web).ok());

  ASSERT_TRUE(DeleteVmTable(web.table).ok());
  EXPECT_FALSE(ListTable(web.table).ok());
  EXPECT_THAT(*ListTable(db.table), HasSubstr("dport 5432"));
  EXPECT_TRUE(DeleteVmTable(web.table).ok());  // Not there: fine.
  ASSERT_TRUE(DeleteVmTable(db.table).ok());
  EXPECT_FALSE(ListTable(db.table).ok());
}

TEST(NftTest, ABadBatchAddsNothingAndSaysWhy) {
  VmRules rules = Rules("00000000000000cc", "fc-cccccccc", "10.213.0.12/30",
                        "not-an-ip", 1);
  absl::Status added = CreateVmTable(rules);
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added.message(), HasSubstr("nftables: "));
  EXPECT_THAT(added.message(), HasSubstr("not-an-ip"));
  EXPECT_FALSE(ListTable(rules.table).ok()) << "half a table was left";
}

}  // namespace
}  // namespace fcvm::runner::net

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Everything this test creates lives and dies in its own namespace.
  if (unshare(CLONE_NEWNET) != 0) {
    std::cerr << "network_test needs CAP_SYS_ADMIN (root) for a network "
                 "namespace of its own\n";
    return 1;
  }
  return RUN_ALL_TESTS();
}
