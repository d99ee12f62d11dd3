#include "rootfs/init/boot_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::init {
namespace {

using ::testing::HasSubstr;

TEST(BootConfigTest, DefaultsWithoutOurParameters) {
  absl::StatusOr<BootConfig> config =
      ParseBootConfig("console=ttyS0 root=/dev/vda ro quiet\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->disk, "/dev/vdb");
  EXPECT_EQ(config->agent, "/usr/sbin/fc-agent");
  EXPECT_EQ(config->hostname, "fcvm");
}

TEST(BootConfigTest, ReadsOurParameters) {
  absl::StatusOr<BootConfig> config = ParseBootConfig(
      "console=ttyAMA0 fcvm.disk=/dev/vdc  fcvm.hostname=web-1\t"
      "fcvm.agent=/opt/agent panic=-1");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->disk, "/dev/vdc");
  EXPECT_EQ(config->agent, "/opt/agent");
  EXPECT_EQ(config->hostname, "web-1");
}

TEST(BootConfigTest, LeavesTheAgentsPlanAlone) {
  absl::StatusOr<BootConfig> config =
      ParseBootConfig("fcvm.plan=eyJpbWFnZSI6Im5naW54In0 fcvm.agent=shell");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->agent, "shell");
}

TEST(BootConfigTest, UnknownParameterIsNamed) {
  absl::StatusOr<BootConfig> config = ParseBootConfig("fcvm.dsik=/dev/vdb");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("'fcvm.dsik'"));
}

TEST(BootConfigTest, EmptyValueIsRefused) {
  EXPECT_FALSE(ParseBootConfig("fcvm.disk=").ok());
  EXPECT_FALSE(ParseBootConfig("fcvm.disk").ok());
  EXPECT_FALSE(
      ParseBootConfig(std::string("fcvm.hostname=") + std::string(65, 'a'))
          .ok());
}

}  // namespace
}  // namespace fcvm::init
