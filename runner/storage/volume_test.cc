#include "runner/storage/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

// e2fsck finds `image` clean, and `path` in it holds `contents` (e2fsck
// and debugfs are in /usr/sbin, found whatever PATH says).
void ExpectCleanWith(const std::string& image, const std::string& path,
                     const std::string& contents) {
  SubprocessOptions fsck;
  fsck.argv = {"e2fsck", "-fn", image};
  absl::StatusOr<Subprocess::Output> checked =
      RunCommand(fsck, absl::Minutes(2));
  EXPECT_TRUE(checked.ok()) << checked.status();
  SubprocessOptions cat;
  cat.argv = {"debugfs", "-R", absl::StrCat("cat ", path), image};
  absl::StatusOr<Subprocess::Output> read = RunCommand(cat, absl::Minutes(1));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->stdout_data, contents);
}

TEST(VolumeTest, ADirectoryBecomesAnExt4ImageE2fsckAccepts) {
  ASSERT_EQ(mkdir(Tmp("www").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(Tmp("www/sub").c_str(), 0755), 0);
  ASSERT_TRUE(
      WriteFileAtomically(Tmp("www/index.html"), "from a volume\n").ok());
  ASSERT_TRUE(
      WriteFileAtomically(Tmp("www/sub/big"), std::string(3 << 20, 'b')).ok());
  ASSERT_TRUE(MakeDirectoryImage(Tmp("www"), Tmp("volume-2.ext4")).ok());
  // A real ext4 that e2fsck finds clean, with the files in it.
  ExpectCleanWith(Tmp("volume-2.ext4"), "/index.html", "from a volume\n");
}

// mke2fs sizes the inode table by bytes; a tree of many small files (a
// node_modules) needs an inode per entry whatever its bytes.
TEST(VolumeTest, ATreeOfManySmallFilesGetsAnInodeForEach) {
  ASSERT_EQ(mkdir(Tmp("many").c_str(), 0755), 0);
  constexpr int kDirs = 40, kFilesPerDir = 500;
  for (int d = 0; d < kDirs; ++d) {
    const std::string dir = Tmp(absl::StrCat("many/d", d));
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    for (int f = 0; f < kFilesPerDir; ++f) {
      const int fd = open(absl::StrCat(dir, "/f", f).c_str(),
                          O_WRONLY | O_CREAT | O_EXCL, 0644);
      ASSERT_GE(fd, 0);
      close(fd);
    }
  }
  ASSERT_TRUE(WriteFileAtomically(Tmp("many/d7/f7"), "seven\n").ok());
  absl::Status made = MakeDirectoryImage(Tmp("many"), Tmp("many.ext4"));
  ASSERT_TRUE(made.ok()) << made;
  ExpectCleanWith(Tmp("many.ext4"), "/d7/f7", "seven\n");
}

TEST(VolumeTest, AMissingDirectoryIsNamedAndLeavesNoImage) {
  absl::Status made = MakeDirectoryImage("/nonexistent/x", Tmp("none.ext4"));
  ASSERT_FALSE(made.ok());
  EXPECT_THAT(made.message(), HasSubstr("/nonexistent/x"));
  EXPECT_NE(access(Tmp("none.ext4").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace fcvm::runner
