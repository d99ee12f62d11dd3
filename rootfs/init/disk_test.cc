#include "rootfs/init/disk.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::init {
namespace {

using ::fcvm::rootfs::testing::IsOkAndHolds;

std::string Temp(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

[[nodiscard]] absl::StatusOr<DiskContent> ProbePath(const std::string& path) {
  absl::StatusOr<UniqueFd> fd = OpenFd(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  return ProbeDisk(fd->get());
}

TEST(DiskTest, SparseFileIsBlank) {
  const std::string path = Temp("blank.img");
  UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(ftruncate(fd.get(), 16 << 20), 0);
  EXPECT_THAT(ProbeDisk(fd.get()), IsOkAndHolds(DiskContent::kBlank));
}

TEST(DiskTest, Ext4IsRecognised) {
  const std::string path = Temp("ext4.img");
  ASSERT_TRUE(
      RunCommand({.argv = {"mke2fs", "-q", "-F", "-t", "ext4", path, "8M"}},
                 absl::Seconds(60))
          .ok());
  EXPECT_THAT(ProbePath(path), IsOkAndHolds(DiskContent::kExt));
}

TEST(DiskTest, OtherDataIsNeverBlank) {
  const std::string path = Temp("other.img");
  UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(ftruncate(fd.get(), 16 << 20), 0);
  // One byte far from any superblock (e.g. a partition table entry).
  ASSERT_EQ(pwrite(fd.get(), "x", 1, 40000), 1);
  EXPECT_THAT(ProbeDisk(fd.get()), IsOkAndHolds(DiskContent::kOther));
}

TEST(DiskTest, ShortDiskIsReadWhole) {
  const std::string path = Temp("short.img");
  UniqueFd fd(open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(ftruncate(fd.get(), 512), 0);
  EXPECT_THAT(ProbeDisk(fd.get()), IsOkAndHolds(DiskContent::kBlank));
}

}  // namespace
}  // namespace fcvm::init
