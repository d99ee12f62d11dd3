#include "runner/storage/disk.h"

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

using ::testing::AnyOf;
using ::testing::HasSubstr;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

// Sparse: no block is allocated (how long it takes is measured by
// bench/run_boot.sh, not asserted here).
TEST(DiskTest, BlankDiskIsSparse) {
  const std::string path = Tmp("blank.img");
  absl::StatusOr<DiskReport> report =
      CreateWritableDisk(path, uint64_t{8} << 30);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->method, "sparse");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, int64_t{8} << 30);
  EXPECT_EQ(st.st_blocks, 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(DiskTest, NeverOverwritesAnExistingFile) {
  const std::string path = Tmp("exists.img");
  ASSERT_TRUE(WriteFileAtomically(path, "precious").ok());
  absl::StatusOr<DiskReport> report = CreateWritableDisk(path, 1 << 20);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr(path));
  EXPECT_EQ(*ReadFile(path), "precious");
}

TEST(DiskTest, FromATemplateKeepsItsDataAndHoles) {
  // A template with data at 0 and at 5 MiB, holes elsewhere.
  const std::string tmpl = Tmp("template.img");
  {
    int fd = open(tmpl.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "superblock", 10, 0), 10);
    ASSERT_EQ(pwrite(fd, "inode table", 11, 5 << 20), 11);
    ASSERT_EQ(ftruncate(fd, 16 << 20), 0);
    close(fd);
  }
  const std::string path = Tmp("from-template.img");
  absl::StatusOr<DiskReport> report = CreateWritableDisk(path, 64 << 20, tmpl);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->method, AnyOf("reflink", "sparse copy"));
  std::cout << "template copy on this filesystem: " << report->method << ", "
            << absl::FormatDuration(report->took) << "\n";
  std::string contents = *ReadFile(path);
  ASSERT_EQ(contents.size(), 64u << 20);
  EXPECT_EQ(contents.substr(0, 10), "superblock");
  EXPECT_EQ(contents.substr(5 << 20, 11), "inode table");
  EXPECT_EQ(contents.find_first_not_of('\0', 10), size_t{5} << 20);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "holes were filled";

  EXPECT_THAT(
      CreateWritableDisk(Tmp("small.img"), 1 << 20, tmpl).status().message(),
      HasSubstr("smaller than its template"));
  EXPECT_NE(access(Tmp("small.img").c_str(), F_OK), 0) << "left behind";
}

}  // namespace
}  // namespace fcvm::runner
