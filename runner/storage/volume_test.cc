#include "runner/storage/volume.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

TEST(VolumeTest, AFileIsAttachedAsItIs) {
  ASSERT_TRUE(
      WriteFileAtomically(Tmp("data.img"), std::string(4096, 'x')).ok());
  absl::StatusOr<VolumeDrive> drive =
      PrepareVolume({Tmp("data.img"), "/data", false}, 0, Tmp(""));
  ASSERT_TRUE(drive.ok()) << drive.status();
  EXPECT_EQ(drive->path, Tmp("data.img"));
  EXPECT_FALSE(drive->read_only);
  EXPECT_EQ(drive->how, "disk image");
}

TEST(VolumeTest, AReadOnlyDirectoryBecomesAnExt4ImageE2fsckAccepts) {
  ASSERT_EQ(mkdir(Tmp("www").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(Tmp("www/sub").c_str(), 0755), 0);
  ASSERT_TRUE(
      WriteFileAtomically(Tmp("www/index.html"), "from a volume\n").ok());
  ASSERT_TRUE(
      WriteFileAtomically(Tmp("www/sub/big"), std::string(3 << 20, 'b')).ok());
  ASSERT_EQ(mkdir(Tmp("vm").c_str(), 0700), 0);
  absl::StatusOr<VolumeDrive> drive =
      PrepareVolume({Tmp("www"), "/srv/www", true}, 2, Tmp("vm"));
  ASSERT_TRUE(drive.ok()) << drive.status();
  EXPECT_EQ(drive->path, Tmp("vm/volume-2.ext4"));
  EXPECT_TRUE(drive->read_only);
  // A real ext4 that e2fsck finds clean, with the files in it.
  const std::string check =
      absl::StrCat("e2fsck -fn ", drive->path,
                   " >/dev/null && debugfs -R 'cat "
                   "/index.html' ",
                   drive->path, " 2>/dev/null | grep -q 'from a volume'");
  EXPECT_EQ(system(check.c_str()), 0);
}

TEST(VolumeTest, AWritableDirectoryIsRefusedWithTheWayOut) {
  ASSERT_EQ(mkdir(Tmp("rw").c_str(), 0755), 0);
  absl::StatusOr<VolumeDrive> drive =
      PrepareVolume({Tmp("rw"), "/data", false}, 0, Tmp(""));
  ASSERT_FALSE(drive.ok());
  EXPECT_THAT(drive.status().message(), HasSubstr("mount it :ro"));
  EXPECT_THAT(drive.status().message(), HasSubstr("disk image file"));
}

TEST(VolumeTest, MissingPathIsNamed) {
  absl::StatusOr<VolumeDrive> drive =
      PrepareVolume({"/nonexistent/x", "/data", true}, 0, Tmp(""));
  ASSERT_FALSE(drive.ok());
  EXPECT_THAT(drive.status().message(), HasSubstr("/nonexistent/x"));
}

}  // namespace
}  // namespace fcvm::runner
