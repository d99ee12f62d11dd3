// `fcvm run --backend firecracker` end to end on a host that has it: root,
// a firecracker binary in PATH and KVM that runs a guest (the runner's own
// probe decides). Inside a network namespace of the test's own: the VM's
// TAP, MMDS plan and published port; the page through 127.0.0.1; stop
// leaves no TAP, rule or process. Elsewhere it skips, saying which of the
// three is missing.
//   firecracker_test <runner/vm> <runner/fcvm>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/state/process.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using FirecrackerTest = FcvmTest;

std::string MissingForFirecracker() {
  if (!InPath("firecracker")) return "no firecracker in PATH";
  if (access("/dev/kvm", R_OK | W_OK) != 0) return "no accessible /dev/kvm";
  return "";
}

TEST_F(FirecrackerTest, ServesThePublishedPortAndLeavesNothing) {
  if (const std::string missing = MissingForFirecracker(); !missing.empty()) {
    GTEST_SKIP() << "needs a Firecracker host: " << missing;
  }
  const uint16_t port = FreePort();
  Result run = Exec({g_vm, "-d", "--backend", "firecracker", "--name", "fc",
                     "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
                    absl::Minutes(5));
  std::cout << run.err;
  if (run.code != 0 && run.err.find("KVM probe: broken") != std::string::npos) {
    GTEST_SKIP() << "KVM cannot run a guest here: " << run.err;
  }
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct state = Inspect("fc");
  Remember(state);
  EXPECT_EQ(Field(state, "backend"), "firecracker");
  const std::string tap = state.fields()
                              .at("network")
                              .struct_value()
                              .fields()
                              .at("tap")
                              .string_value();
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  EXPECT_THAT(Fcvm({"logs", "--console", "fc"}).out,
              HasSubstr("\"planSource\":\"mmds\""));
  ASSERT_EQ(Fcvm({"stop", "fc"}, absl::Minutes(2)).code, 0);
  EXPECT_FALSE(runner::net::LinkExists(tap));
  EXPECT_THAT(*runner::net::VmsWithRules(), IsEmpty());
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks));
  }
  ASSERT_EQ(Fcvm({"rm", "fc"}).code, 0);
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMainInOwnNetns(argc, argv);
}
