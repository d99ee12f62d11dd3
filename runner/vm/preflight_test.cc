#include "runner/vm/preflight.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

// The production host: aarch64, Firecracker, KVM that runs a guest, root,
// and no QEMU. It can run VMs (the first edition's preflight said no).
PreflightFacts FirecrackerOnly() {
  PreflightFacts facts;
  facts.host.host_arch = facts.host.guest_arch = "aarch64";
  facts.host.firecracker = "/usr/local/bin/firecracker";
  facts.host.kvm_firecracker = {true, "works: Firecracker booted the kernel"};
  facts.have_kernel = true;
  facts.direct = {true, "works: KVM ran a probe guest"};
  facts.tun = true;
  facts.user_namespaces = "63493";
  facts.root = true;
  facts.state_root = "/run/fcvm";
  return facts;
}

std::string Text(const PreflightReport& report) {
  std::string text;
  for (const PreflightLine& line : report.lines) {
    text += (line.ok ? "ok " : "-- ") + line.what + ": " + line.detail + "\n";
  }
  return text;
}

TEST(PreflightTest, AFirecrackerOnlyHostCanRunVms) {
  const PreflightReport report = DescribePreflight(FirecrackerOnly());
  EXPECT_TRUE(report.usable) << Text(report);
  EXPECT_THAT(Text(report), HasSubstr("-- qemu-system-aarch64: not installed"));
  EXPECT_THAT(Text(report), HasSubstr("ok KVM under Firecracker: works"));
}

TEST(PreflightTest, FirecrackerWithoutAWorkingKvmOrATapCannot) {
  PreflightFacts facts = FirecrackerOnly();
  facts.host.kvm_firecracker = {false, "broken: KVM internal error"};
  EXPECT_FALSE(DescribePreflight(facts).usable);
  facts = FirecrackerOnly();
  facts.root = false;
  EXPECT_FALSE(DescribePreflight(facts).usable) << "no TAP without root";
  facts.host.pasta = true;
  EXPECT_TRUE(DescribePreflight(facts).usable) << "pasta gives it one";
}

TEST(PreflightTest, QemuAloneCanAndTheLibraryIsWhatIsChecked) {
  PreflightFacts facts;
  facts.host.guest_arch = "x86_64";
  facts.host.qemu = true;
  facts.nftables =
      absl::PermissionDeniedError("nftables: Operation not permitted");
  const PreflightReport report = DescribePreflight(facts);
  EXPECT_TRUE(report.usable);
  EXPECT_THAT(Text(report),
              HasSubstr("-- libnftables: nftables: Operation not permitted "
                        "(rootless modes make theirs in the VM's own "
                        "namespace)"));
  EXPECT_THAT(Text(report), HasSubstr("-- guest kernel: none given"));
}

TEST(PreflightTest, NamesTheDebianPackagesOfWhatIsMissingAndTheAssets) {
  PreflightFacts facts = FirecrackerOnly();
  facts.assets = "/var/lib/fcvm/0.17.0/share/fcvm (installed 0.17.0, ...)";
  facts.have_assets = true;
  PreflightReport report = DescribePreflight(facts);
  EXPECT_EQ(report.missing_packages,
            (std::vector<std::string>{"qemu-system-arm", "passt", "nftables"}));
  EXPECT_THAT(Text(report),
              HasSubstr("ok guest assets: /var/lib/fcvm/0.17.0/share/fcvm"));
  EXPECT_THAT(Text(report),
              HasSubstr("-- nft: not installed (Debian package nftables)"));
  facts.host.qemu = facts.host.pasta = facts.nft = true;
  facts.have_assets = false;
  facts.assets.clear();
  report = DescribePreflight(facts);
  EXPECT_TRUE(report.missing_packages.empty());
  EXPECT_THAT(Text(report), HasSubstr("-- guest assets: none found"));
}

}  // namespace
}  // namespace fcvm::runner
