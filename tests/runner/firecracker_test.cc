// `fcvm run --backend firecracker` end to end with a real Firecracker, on a
// host that has one (`bazel test --config=kvm-host //tests/...`): root, a
// firecracker in PATH and KVM that runs a guest under it, as the runner's
// own check says (`fcvm preflight`: the direct KVM probe, then Firecracker
// booting the kernel). Inside a network namespace of the test's own: the
// VM's TAP, MMDS plan and published port; the page through 127.0.0.1;
// pause and resume; stop leaves no TAP, table or process. Elsewhere it
// skips, naming what is missing.
//   firecracker_test <programs, see fcvm_fixture.h>
#include <unistd.h>

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
using FirecrackerTest = FcvmTest;

// Empty when this host runs Firecracker VMs; else what it lacks, in the
// runner's words.
std::string MissingForFirecracker(const FcvmTest::Result& preflight) {
  for (absl::string_view line : absl::StrSplit(preflight.out, '\n')) {
    if (absl::StrContains(line, "KVM under Firecracker")) {
      return absl::StartsWith(line, "ok") ? "" : std::string(line);
    }
    if (absl::StrContains(line, "KVM (direct probe)") &&
        !absl::StartsWith(line, "ok")) {
      return std::string(line);
    }
  }
  return "fcvm preflight said nothing about KVM under Firecracker:\n" +
         preflight.out;
}

TEST_F(FirecrackerTest, ServesThePublishedPortPausesAndLeavesNothing) {
  // The real one, not the stand-in the fixture points FCVM_FIRECRACKER at.
  unsetenv("FCVM_FIRECRACKER");
  const std::string missing =
      !InPath("firecracker") ? "no firecracker in PATH"
                             : MissingForFirecracker(Fcvm(
                                   {"--kernel", g_programs.kernel, "preflight"},
                                   absl::Minutes(2)));
  if (!missing.empty()) GTEST_SKIP() << "needs a Firecracker host: " << missing;
  const uint16_t port = FreePort();
  Result run = Exec({HostVm(), "-d", "--backend", "firecracker", "--name", "fc",
                     "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
                    absl::Minutes(5));
  std::cout << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct state = Inspect("fc");
  Remember(state);
  EXPECT_EQ(Field(state, "backend"), "firecracker");
  const auto& net = state.fields().at("network").struct_value().fields();
  const std::string tap = net.at("tap").string_value();
  const std::string table = net.at("nft_table").string_value();
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  EXPECT_THAT(Fcvm({"logs", "--console", "fc"}).out,
              HasSubstr("\"planSource\":\"mmds\""));
  ASSERT_EQ(Fcvm({"pause", "fc"}).code, 0);
  EXPECT_FALSE(Get("127.0.0.1", port, absl::Seconds(2)).ok());
  ASSERT_EQ(Fcvm({"resume", "fc"}).code, 0);
  EXPECT_TRUE(Get("127.0.0.1", port, absl::Seconds(30)).ok());
  ASSERT_EQ(Fcvm({"stop", "fc"}, absl::Minutes(2)).code, 0);
  EXPECT_FALSE(runner::net::LinkExists(tap));
  EXPECT_FALSE(runner::net::ListTable(table).ok());
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
