#include "runner/vmm/vmm.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;

TEST(VmmCommandTest, AsIsWithoutANamespace) {
  VmSpec spec;
  EXPECT_THAT(VmmCommand(spec, {"qemu-system-x86_64", "-S"}),
              ElementsAre("qemu-system-x86_64", "-S"));
}

TEST(VmmCommandTest, JoinsTheHoldersUserAndNetworkNamespaces) {
  VmSpec spec;
  spec.set_netns_pid(4242);
  // --preserve-credentials: the VMM keeps the user's uid (root inside the
  // namespace, which maps it to 0) and nsenter makes no setgroups call,
  // which a namespace with setgroups denied would refuse.
  EXPECT_THAT(VmmCommand(spec, {"firecracker", "--api-sock", "/x"}),
              ElementsAre("nsenter", "--target=4242", "--user", "--net",
                          "--preserve-credentials", "--", "firecracker",
                          "--api-sock", "/x"));
}

TEST(VirtioBlockDeviceTest, NamesDrivesAsLinuxDoes) {
  EXPECT_EQ(VirtioBlockDevice(0), "/dev/vda");
  EXPECT_EQ(VirtioBlockDevice(2), "/dev/vdc");
  EXPECT_EQ(VirtioBlockDevice(25), "/dev/vdz");
  EXPECT_EQ(VirtioBlockDevice(26), "/dev/vdaa");
  EXPECT_EQ(VirtioBlockDevice(27), "/dev/vdab");
  EXPECT_EQ(VirtioBlockDevice(701), "/dev/vdzz");
  EXPECT_EQ(VirtioBlockDevice(702), "/dev/vdaaa");
}

}  // namespace
}  // namespace fcvm::runner
