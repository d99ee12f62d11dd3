#include "base/file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

// A fresh directory under TEST_TMPDIR for one test.
std::string MakeTestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp ? tmp : "/tmp", "/file_test.XXXXXX");
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

TEST(WriteFileAtomicallyTest, WritesNewFileWithMode) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/state.pb";
  ASSERT_TRUE(WriteFileAtomically(path, "v1", 0640).ok());
  absl::StatusOr<std::string> data = ReadFile(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, "v1");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"state.pb"});
}

TEST(WriteFileAtomicallyTest, ReplacesExistingAndLeavesNoTemp) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/state.pb";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents, longer").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "new").ok());
  EXPECT_EQ(*ReadFile(path), "new");
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"state.pb"});
}

// Without the fsyncs the file is still replaced whole, with its mode.
TEST(WriteFileAtomicallyTest, UnsyncedReplacesTheSameWay) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/hostname";
  ASSERT_TRUE(WriteFileAtomically(path, "old\n").ok());
  ASSERT_TRUE(
      WriteFileAtomically(path, "web-1\n", 0444, Durability::kUnsynced).ok());
  EXPECT_EQ(*ReadFile(path), "web-1\n");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"hostname"});
}

// RemoveTree takes a directory and all under it; a missing path is fine.
TEST(RemoveTreeTest, RemovesEverythingUnderIt) {
  std::string dir = MakeTestDir();
  ASSERT_EQ(::mkdir((dir + "/a").c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(dir + "/a/f", "x").ok());
  ASSERT_TRUE(RemoveTree(dir + "/a").ok());
  EXPECT_TRUE(ListDir(dir).empty());
  EXPECT_TRUE(RemoveTree(dir + "/a").ok());
}

TEST(WriteFileAtomicallyTest, EmptyAndBinaryContents) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/blob";
  ASSERT_TRUE(WriteFileAtomically(path, "").ok());
  EXPECT_EQ(*ReadFile(path), "");
  std::string binary("\0\1\2\xff", 4);
  ASSERT_TRUE(WriteFileAtomically(path, binary).ok());
  EXPECT_EQ(*ReadFile(path), binary);
}

TEST(WriteFileAtomicallyTest, MissingDirectoryNamesPath) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/no/such/dir/state.pb";
  absl::Status status = WriteFileAtomically(path, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            absl::StrCat("writing ", path, ": create ", path,
                         ".tmp.XXXXXX: No such file or directory"));
}

TEST(WriteFileAtomicallyTest, TargetIsDirectoryKeepsItAndCleansUp) {
  std::string dir = MakeTestDir();
  std::string path = dir + "/occupied";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  absl::Status status = WriteFileAtomically(path, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);  // EISDIR
  EXPECT_NE(status.message().find("rename "), absl::string_view::npos)
      << status;
  // The temporary file is gone; the directory is untouched.
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"occupied"});
}

TEST(ReadFileTest, MissingFileNamesPath) {
  absl::StatusOr<std::string> data = ReadFile("/nonexistent/fcvm/x");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(data.status().message(),
            "open /nonexistent/fcvm/x: No such file or directory");
}

}  // namespace
}  // namespace fcvm
