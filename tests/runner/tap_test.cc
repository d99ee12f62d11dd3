// `fcvm run --network tap` end to end, as root, inside a network namespace
// this test creates for itself (unshare at start; everything in it goes
// with the process): the VM gets a TAP and a /30, its published port is a
// DNAT rule in fcvm's nftables table; the page is fetched through
// 127.0.0.1:<port> and from the guest's own address; stop removes the TAP
// and the rules; a runner killed with SIGKILL leaves both, and gc removes
// them.
//   tap_test <runner/vm> <runner/fcvm>
#include "runner/net/tap.h"

#include <signal.h>

#include <iostream>

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

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using TapTest = FcvmTest;

TEST_F(TapTest, PublishedPortThroughNftablesAndNothingLeftAfterStop) {
  const uint16_t port = FreePort();
  Result run = Exec({g_vm, "-d", "--network", "tap", "--accel", "tcg", "--name",
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
  EXPECT_TRUE(runner::net::LinkExists(tap));
  EXPECT_THAT(*runner::net::VmsWithRules(), Contains("web"));
  std::cout << *runner::net::ListTable();

  // Through the DNAT rule (output chain, localhost), and straight to the VM.
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  page = Get(guest, 8080);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));

  ASSERT_EQ(Fcvm({"stop", "web"}, absl::Minutes(3)).code, 0);
  EXPECT_FALSE(runner::net::LinkExists(tap)) << tap << " left";
  EXPECT_THAT(*runner::net::VmsWithRules(), IsEmpty());
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks));
  }
  ASSERT_EQ(Fcvm({"rm", "web"}).code, 0);
}

TEST_F(TapTest, GcRemovesTheTapAndRulesOfAKilledRunner) {
  const uint16_t port = FreePort();
  google::protobuf::Struct state;
  absl::StatusOr<Subprocess> runner = StartUntilRunning(
      {g_vm, "--network", "tap", "--accel", "tcg", "--name", "fg", "-p",
       absl::StrCat(port, ":8080"), "busybox-httpd"},
      "fg", &state);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const std::string tap = state.fields()
                              .at("network")
                              .struct_value()
                              .fields()
                              .at("tap")
                              .string_value();
  ASSERT_EQ(kill(runner->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner->Wait(absl::Seconds(10)).ok());
  EXPECT_TRUE(runner::net::LinkExists(tap));
  EXPECT_THAT(*runner::net::VmsWithRules(), Contains("fg"));

  Result gc = Fcvm({"gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_THAT(gc.out, HasSubstr(absl::StrCat("TAP ", tap)));
  EXPECT_FALSE(runner::net::LinkExists(tap));
  EXPECT_THAT(*runner::net::VmsWithRules(), IsEmpty());
  EXPECT_FALSE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second));
  EXPECT_FALSE(Get("127.0.0.1", port).ok());
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMainInOwnNetns(argc, argv);
}
