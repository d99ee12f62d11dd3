#include "agent/fw_cfg.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;

TEST(FwCfgTest, PortsFromTheCommandLine) {
  absl::StatusOr<FwCfgPorts> ports = FwCfgPortsFromCmdline(
      "console=ttyS0 qemu_fw_cfg.ioport=12@0x510:0:1:4 panic=-1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(ports->selector, 0x510);
  EXPECT_EQ(ports->data, 0x511);
  // Offsets default to 0 and 1.
  ports = FwCfgPortsFromCmdline("qemu_fw_cfg.ioport=2@1296");
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(ports->selector, 0x510);
  EXPECT_EQ(ports->data, 0x511);
}

TEST(FwCfgTest, AbsentOrBadPorts) {
  EXPECT_EQ(FwCfgPortsFromCmdline("console=ttyS0").status().code(),
            absl::StatusCode::kNotFound);
  for (const char* bad :
       {"qemu_fw_cfg.ioport=0x510", "qemu_fw_cfg.ioport=12@",
        "qemu_fw_cfg.ioport=12@0x510:0", "qemu_fw_cfg.ioport=12@0xfffff"}) {
    absl::StatusOr<FwCfgPorts> ports = FwCfgPortsFromCmdline(bad);
    EXPECT_EQ(ports.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ports.status().message(), HasSubstr("qemu_fw_cfg.ioport"));
  }
}

TEST(FwCfgTest, FileDirectoryRecordIsBigEndian) {
  unsigned char record[64] = {};
  record[2] = 0x01;  // size 0x00000102 = 258
  record[3] = 0x02;
  record[4] = 0x00;  // select 0x0021
  record[5] = 0x21;
  std::memcpy(record + 8, "opt/fcvm/plan", 13);
  const FwCfgFile file = ParseFwCfgFileRecord(record);
  EXPECT_EQ(file.size, 258u);
  EXPECT_EQ(file.select, 0x21);
  EXPECT_EQ(file.name, "opt/fcvm/plan");
  // A name filling all 56 bytes has no terminator.
  std::memset(record + 8, 'a', 56);
  EXPECT_EQ(ParseFwCfgFileRecord(record).name, std::string(56, 'a'));
}

}  // namespace
}  // namespace fcvm::agent
