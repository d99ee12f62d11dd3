// `fcvm run --network tap` end to end, as root, inside a network namespace
// this test creates for itself (unshare at start; everything in it goes
// with the process): the VM gets a TAP and a /30, its published port is a
// DNAT rule in the VM's own nftables table (ip fcvm-<id>); the page is
// fetched through 127.0.0.1:<port> and from the guest's own address; stop
// removes the TAP and the table; a runner killed with SIGKILL leaves both,
// and gc removes them; a gc of another state store touches neither; clones
// of a TAP VM get a TAP, a /30 and a table each.
//   tap_test <programs, see fcvm_fixture.h>
#include "runner/net/tap.h"

#include <signal.h>

#include <iostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/net/nft.h"
#include "runner/state/process.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using TapTest = FcvmTest;

std::string NetField(const google::protobuf::Struct& state,
                     const std::string& key) {
  return state.fields()
      .at("network")
      .struct_value()
      .fields()
      .at(key)
      .string_value();
}

TEST_F(TapTest, PublishedPortThroughNftablesAndNothingLeftAfterStop) {
  const uint16_t port = FreePort();
  Result run =
      Exec({HostVm(), "-d", "--network", "tap", "--accel", "tcg", "--name",
            "web", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
           absl::Minutes(8));
  std::cout << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct state = Inspect("web");
  Remember(state);
  const auto& net = state.fields().at("network").struct_value().fields();
  const std::string tap = net.at("tap").string_value();
  const std::string guest = net.at("guest_ip").string_value();
  EXPECT_EQ(net.at("mode").string_value(), "tap");
  const std::string table = net.at("nft_table").string_value();
  EXPECT_EQ(table, "fcvm-" + Field(state, "id"));
  EXPECT_TRUE(runner::net::LinkExists(tap));
  absl::StatusOr<std::string> rules = runner::net::ListTable(table);
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::cout << *rules;

  // Through the DNAT rule (output chain, localhost), and straight to the VM.
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  page = Get(guest, 8080);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));

  ASSERT_EQ(Fcvm({"stop", "web"}, absl::Minutes(3)).code, 0);
  EXPECT_FALSE(runner::net::LinkExists(tap)) << tap << " left";
  EXPECT_FALSE(runner::net::ListTable(table).ok()) << table << " left";
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks));
  }
  ASSERT_EQ(Fcvm({"rm", "web"}).code, 0);
}

// Clones of a TAP-networked VM: each gets a TAP, a /30 and a table of its
// own, and its agent moves the guest to the new address when it
// re-identifies; each serves on its own published port and its own
// address; rm leaves no TAP and no table.
TEST_F(TapTest, ClonesOfATapVmGetANetworkEach) {
  const uint16_t port = FreePort();
  // QEMU: Firecracker snapshots are not implemented yet.
  Result run = Exec({HostVm(), "-d", "--backend", "qemu", "--network", "tap",
                     "--accel", "tcg", "--name", "web", "-p",
                     absl::StrCat(port, ":8080"), "busybox-httpd"},
                    absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct web = Inspect("web");
  Remember(web);
  Result snap = Fcvm({"snapshot", "create", "web", "--tag", "tt"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  const uint16_t first = FreePort();
  Result clone =
      Fcvm({"clone", "tt", "--count", "2", "-p", absl::StrCat(first, ":8080")});
  std::cout << clone.err;
  ASSERT_EQ(clone.code, 0) << clone.err;
  std::set<std::string> subnets = {NetField(web, "subnet")};
  std::vector<std::pair<std::string, std::string>> links;
  for (int i = 1; i <= 2; ++i) {
    google::protobuf::Struct state = Inspect(absl::StrCat("tt-", i));
    Remember(state);
    EXPECT_TRUE(subnets.insert(NetField(state, "subnet")).second)
        << "tt-" << i << " shares a subnet";
    const std::string tap = NetField(state, "tap");
    EXPECT_TRUE(runner::net::LinkExists(tap));
    links.push_back({tap, NetField(state, "nft_table")});
    absl::StatusOr<std::string> page = Get("127.0.0.1", first + i - 1);
    ASSERT_TRUE(page.ok()) << "tt-" << i << ": " << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
    page = Get(NetField(state, "guest_ip"), 8080);
    ASSERT_TRUE(page.ok()) << "tt-" << i << " at its address: "
                           << page.status();
  }
  // The source still serves at its own address.
  ASSERT_TRUE(Get(NetField(web, "guest_ip"), 8080).ok());
  ASSERT_EQ(Fcvm({"rm", "-f", "tt-1", "tt-2", "web"}, absl::Minutes(3)).code,
            0);
  for (const auto& [tap, table] : links) {
    EXPECT_FALSE(runner::net::LinkExists(tap)) << tap << " left";
    EXPECT_FALSE(runner::net::ListTable(table).ok()) << table << " left";
  }
  ASSERT_EQ(Fcvm({"snapshot", "rm", "tt"}).code, 0);
}

TEST_F(TapTest, GcRemovesTheTapAndRulesOfAKilledRunner) {
  const uint16_t port = FreePort();
  google::protobuf::Struct state;
  std::string progress;
  absl::StatusOr<Subprocess> runner =
      StartUntil({HostVm(), "--network", "tap", "--accel", "tcg", "--name",
                  "fg", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
                 "fg", &progress);
  ASSERT_TRUE(runner.ok()) << runner.status();
  state = Inspect("fg");
  const std::string tap = NetField(state, "tap");
  const std::string table = NetField(state, "nft_table");
  ASSERT_EQ(kill(runner->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner->Wait(absl::Seconds(10)).ok());
  EXPECT_TRUE(runner::net::LinkExists(tap));
  EXPECT_TRUE(runner::net::ListTable(table).ok());

  Result gc = Fcvm({"gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_THAT(gc.out,
              HasSubstr(absl::StrCat("TAP ", tap, ", table ip ", table)));
  EXPECT_FALSE(runner::net::LinkExists(tap));
  EXPECT_FALSE(runner::net::ListTable(table).ok());
  EXPECT_FALSE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second));
  EXPECT_FALSE(Get("127.0.0.1", port).ok());
}

// gc used to sweep every fcvm rule and TAP that its own store did not
// name, so a gc of the default store deleted the port forwards of VMs run
// with another --state_dir (another user's, CI's). Each VM's table is its
// own now, and gc looks at nothing but its store's VMs.
TEST_F(TapTest, AGcOfAnotherStoreLeavesThisStoresNetworkAlone) {
  const uint16_t port = FreePort();
  Result run =
      Exec({HostVm(), "-d", "--network", "tap", "--accel", "tcg", "--name",
            "kept", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
           absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct state = Inspect("kept");
  Remember(state);
  const std::string table = NetField(state, "nft_table");

  char other[] = "/tmp/fcvm-other-store.XXXXXX";
  ASSERT_NE(mkdtemp(other), nullptr);
  Result gc = Fcvm({"--state_dir", other, "gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_EQ(gc.out, "");
  rmdir(other);
  EXPECT_TRUE(runner::net::LinkExists(NetField(state, "tap")));
  EXPECT_TRUE(runner::net::ListTable(table).ok())
      << "another store's gc took it";
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  EXPECT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(Fcvm({"rm", "-f", "kept"}, absl::Minutes(3)).code, 0);
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMainInOwnNetns(argc, argv);
}
