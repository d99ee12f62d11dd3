#include "uffd/memory_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

class MemoryFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(
        std::getenv("TEST_TMPDIR"), "/memory-",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(WriteFileAtomically(path_, std::string(8192, 'a'), 0644).ok());
    absl::StatusOr<MemoryFile> file = MemoryFile::Open(path_);
    ASSERT_TRUE(file.ok()) << file.status();
    file_.emplace(std::move(*file));
  }

  FileChange Check() {
    absl::StatusOr<FileChange> change = file_->Check();
    EXPECT_TRUE(change.ok()) << change.status();
    return change.ok() ? *change : FileChange{};
  }

  // Sets the file's mtime to `seconds` past the epoch (no waiting for the
  // clock to move).
  void SetMtime(int64_t seconds) {
    const timespec times[2] = {{seconds, 0}, {seconds, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  }

  std::string path_;
  std::optional<MemoryFile> file_;
};

TEST_F(MemoryFileTest, MapsTheFileAndSeesNoChange) {
  EXPECT_EQ(file_->size(), 8192u);
  EXPECT_EQ(file_->data()[8191], 'a');
  const FileChange change = Check();
  EXPECT_FALSE(change.any());
  EXPECT_EQ(change.what, "");
}

TEST_F(MemoryFileTest, TruncationIsAChangeInPlace) {
  ASSERT_EQ(truncate(path_.c_str(), 4096), 0);
  const FileChange change = Check();
  EXPECT_TRUE(change.in_place);
  EXPECT_FALSE(change.replaced);
  EXPECT_THAT(change.what, HasSubstr("size 8192 -> 4096"));
}

TEST_F(MemoryFileTest, ARewriteOfTheSameSizeIsAChangeInPlace) {
  // A write, its mtime then set back: ctime still tells.
  struct stat before;
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  {
    UniqueFd fd(open(path_.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(pwrite(fd.get(), "b", 1, 0), 1);
  }
  EXPECT_EQ(file_->data()[0], 'b');  // What every VM would be served.
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  const FileChange change = Check();
  EXPECT_TRUE(change.in_place);
  EXPECT_THAT(change.what, HasSubstr("ctime "));
  // And with the mtime moved, mtime.
  SetMtime(12345);
  EXPECT_THAT(Check().what, HasSubstr(" -> 12345000000000"));
}

TEST_F(MemoryFileTest, AFileRenamedOverThePathIsAReplacement) {
  const std::string other = path_ + ".new";
  ASSERT_TRUE(WriteFileAtomically(other, std::string(8192, 'z'), 0644).ok());
  ASSERT_EQ(rename(other.c_str(), path_.c_str()), 0);
  const FileChange change = Check();
  EXPECT_TRUE(change.replaced);
  // The mapped file lost its name (ctime moved with its link count), but
  // not its bytes.
  EXPECT_FALSE(change.in_place) << change.what;
  EXPECT_THAT(change.what, HasSubstr("the path names another file (inode "));
  EXPECT_EQ(file_->data()[0], 'a');
}

TEST_F(MemoryFileTest, ARemovedPathIsAReplacement) {
  ASSERT_EQ(unlink(path_.c_str()), 0);
  const FileChange change = Check();
  EXPECT_TRUE(change.replaced);
  EXPECT_FALSE(change.in_place) << change.what;
  EXPECT_EQ(change.what, "the path was removed");
}

}  // namespace
}  // namespace fcvm::uffd
