#include "runner/vmm/kvm.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Whatever this host's KVM is, the direct probe gives a verdict that says
// why, and a host with /dev/kvm open to us either runs the stub or names
// the KVM failure.
TEST(KvmTest, TheDirectProbeSaysWhy) {
  const KvmVerdict verdict = ProbeKvmDirectly();
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    EXPECT_FALSE(verdict.works);
    EXPECT_THAT(verdict.why, StartsWith("/dev/kvm: "));
    return;
  }
  if (verdict.works) {
    EXPECT_EQ(verdict.why, "works: KVM ran a probe guest");
  } else {
    EXPECT_THAT(verdict.why, StartsWith("broken: "));
  }
}

class CheckKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cache", ++counter);
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    kernel_ = dir_ + "/vmlinux";
    ASSERT_TRUE(WriteFileAtomically(kernel_, "kernel v1").ok());
  }
  KvmCheck Check(int* probes, VmmProbeResult result) {
    KvmCheck check;
    check.arch = HostArch();
    check.kernel = kernel_;
    check.vmm = "qemu";
    check.vmm_binary = "/bin/sh";
    check.cache_dir = dir_;
    check.vmm_probe = [probes, result] {
      ++*probes;
      return result;
    };
    // KVM itself works in these cases: what is tested is the cache.
    check.direct_probe = [] { return KvmVerdict{true, "works: stub"}; };
    return check;
  }
  std::string dir_, kernel_;
};

TEST_F(CheckKvmTest, AnotherCpuNeverGetsKvm) {
  int probes = 0;
  KvmCheck check = Check(&probes, {{true, "works"}});
  check.arch = HostArch() == "x86_64" ? "aarch64" : "x86_64";
  const KvmVerdict verdict = CheckKvm(check);
  EXPECT_FALSE(verdict.works);
  EXPECT_THAT(verdict.why, HasSubstr("no KVM across CPUs"));
  EXPECT_EQ(probes, 0);
}

// The VMM's verdict is remembered per kernel (and host, KVM device, VMM
// binary); a missing VMM is never remembered.
TEST_F(CheckKvmTest, TheVerdictIsRememberedPerKernelButNotAMissingTool) {
  int probes = 0;
  KvmVerdict first =
      CheckKvm(Check(&probes, {{false, "broken: test"}, /*cacheable=*/true}));
  EXPECT_EQ(first.why, "broken: test");
  KvmVerdict again = CheckKvm(Check(&probes, {{true, "works: not asked"}}));
  EXPECT_EQ(again.why, "broken: test (remembered)");
  EXPECT_EQ(probes, 1);
  // A new kernel (another size and mtime) is asked about afresh.
  ASSERT_TRUE(WriteFileAtomically(kernel_, "kernel v2, longer").ok());
  KvmVerdict fresh = CheckKvm(Check(&probes, {{true, "works: v2"}}));
  EXPECT_TRUE(fresh.works);
  EXPECT_EQ(probes, 2);

  int missing = 0;
  KvmCheck check = Check(&missing, {{false, "no qemu"}, /*cacheable=*/false});
  check.vmm = "firecracker";
  EXPECT_EQ(CheckKvm(check).why, "no qemu");
  EXPECT_EQ(CheckKvm(check).why, "no qemu");
  EXPECT_EQ(missing, 2);
}

TEST_F(CheckKvmTest, ADirectProbeThatFailsEndsTheCheck) {
  int probes = 0;
  KvmCheck check = Check(&probes, {{true, "works"}});
  check.direct_probe = [] {
    return KvmVerdict{false,
                      "/dev/kvm: no permission (join the kvm group, "
                      "or run as root)"};
  };
  EXPECT_EQ(CheckKvm(check).why,
            "/dev/kvm: no permission (join the kvm group, or run as root)");
  EXPECT_EQ(probes, 0);
}

}  // namespace
}  // namespace fcvm::runner
