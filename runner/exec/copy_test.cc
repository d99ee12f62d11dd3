#include "runner/exec/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "gtest/gtest.h"

namespace fcvm::runner::exec {
namespace {

class StringSink : public ByteSink {
 public:
  absl::Status Write(absl::string_view bytes) override {
    if (bytes.size() > max_write) max_write = bytes.size();
    bytes_.append(bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  std::string bytes_;
  size_t max_write = 0;
};

// Hands out its bytes in 64 KiB pieces, as a session's STDOUT does.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string bytes) : bytes_(std::move(bytes)) {}
  absl::StatusOr<absl::string_view> Read() override {
    const size_t n = std::min<size_t>(64 * 1024, bytes_.size() - at_);
    absl::string_view piece = absl::string_view(bytes_).substr(at_, n);
    at_ += n;
    return piece;
  }

 private:
  std::string bytes_;
  size_t at_ = 0;
};

// What a tree is, for comparing two: per relative path, its type and mode,
// mtime (not for symlinks), link target or contents' sha256.
std::map<std::string, std::string> Describe(const std::string& root,
                                            const std::string& rel = "") {
  std::map<std::string, std::string> tree;
  const std::string path = rel.empty() ? root : absl::StrCat(root, "/", rel);
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  std::string what = absl::StrCat("mode ", st.st_mode);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = readlink(path.c_str(), target, sizeof(target));
    absl::StrAppend(&what, " -> ", std::string(target, n > 0 ? n : 0));
  } else {
    absl::StrAppend(&what, " mtime ", st.st_mtime);
  }
  if (S_ISREG(st.st_mode)) {
    absl::StatusOr<std::string> sha = Sha256File(path);
    absl::StrAppend(&what, " sha256 ", sha.ok() ? *sha : "?");
  }
  tree[rel] = what;
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = opendir(path.c_str());
    while (dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      for (auto& [k, v] :
           Describe(root, rel.empty() ? name : absl::StrCat(rel, "/", name))) {
        tree[k] = v;
      }
    }
    closedir(dir);
  }
  return tree;
}

// An archive made by hand: a malicious or odd peer's.
struct Entry {
  std::string name;
  mode_t type = AE_IFREG;
  std::string contents;  // Or the link target.
  bool hardlink = false;
};

std::string Craft(const std::vector<Entry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  std::string bytes;
  archive_write_open(
      a, &bytes, nullptr,
      [](archive*, void* out, const void* buffer, size_t n) -> la_ssize_t {
        static_cast<std::string*>(out)->append(static_cast<const char*>(buffer),
                                               n);
        return n;
      },
      nullptr);
  for (const Entry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, e.type == AE_IFDIR ? 0755 : 0644);
    if (e.hardlink) {
      archive_entry_set_hardlink(entry, e.contents.c_str());
    } else if (e.type == AE_IFLNK) {
      archive_entry_set_symlink(entry, e.contents.c_str());
    } else if (e.type == AE_IFREG) {
      archive_entry_set_size(entry, e.contents.size());
    }
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK);
    if (e.type == AE_IFREG && !e.hardlink) {
      archive_write_data(a, e.contents.data(), e.contents.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return bytes;
}

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/copy_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dest_ = root_ + "/dest";
    outside_ = root_ + "/outside";
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(root_).ok()); }

  void Write(const std::string& path, const std::string& contents,
             mode_t mode) {
    ASSERT_TRUE(WriteFileAtomically(path, contents).ok());
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  absl::Status Extract(const std::vector<Entry>& entries,
                       const std::string& top = "x",
                       const std::string& rename = "") {
    StringSource source(Craft(entries));
    return ExtractTar(source, dest_, top, rename);
  }

  std::string root_, dest_, outside_;
};

TEST_F(CopyTest, TreeRoundTripsWithModesLinksTimesAndContents) {
  const std::string src = root_ + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((src + "/private").c_str(), 0750), 0);
  ASSERT_EQ(chmod((src + "/private").c_str(), 0750), 0);
  Write(src + "/private/secret", "s3cret\n", 0600);
  Write(src + "/run.sh", "#!/bin/sh\necho hi\n", 0755);
  std::string big(20 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  Write(src + "/big.bin", big, 0644);
  ASSERT_EQ(symlink("private/secret", (src + "/link").c_str()), 0);
  ASSERT_EQ(symlink("../nowhere/at/all", (src + "/dangling").c_str()), 0);
  // Times that no extraction would give by chance.
  const timeval times[2] = {{1500000000, 0}, {1500000000, 0}};
  for (const char* name :
       {"/private/secret", "/run.sh", "/big.bin", "/private", ""}) {
    ASSERT_EQ(utimes((src + name).c_str(), times), 0) << name;
  }

  StringSink sink;
  ASSERT_TRUE(WriteTar(src, "tree", sink).ok());
  EXPECT_LE(sink.max_write, 64u * 1024);  // Frame-sized pieces.
  StringSource source(sink.bytes_);
  const absl::Status extracted = ExtractTar(source, dest_, "tree");
  ASSERT_TRUE(extracted.ok()) << extracted;
  EXPECT_EQ(Describe(dest_ + "/tree"), Describe(src));
  EXPECT_EQ(Describe(dest_ + "/tree").size(), 7u);

  // The top renamed: the same tree under the new name.
  StringSource again(sink.bytes_);
  ASSERT_TRUE(ExtractTar(again, dest_, "tree", "copy").ok());
  EXPECT_EQ(Describe(dest_ + "/copy"), Describe(src));
}

TEST_F(CopyTest, OneFileOntoAnExistingFileReplacesIt) {
  Write(root_ + "/one", "new contents", 0640);
  Write(dest_ + "/target", "old", 0600);
  StringSink sink;
  ASSERT_TRUE(WriteTar(root_ + "/one", "one", sink).ok());
  StringSource source(sink.bytes_);
  const absl::Status extracted = ExtractTar(source, dest_, "one", "target");
  ASSERT_TRUE(extracted.ok()) << extracted;
  absl::StatusOr<std::string> contents = ReadFile(dest_ + "/target");
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(*contents, "new contents");
  struct stat st;
  ASSERT_EQ(stat((dest_ + "/target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(CopyTest, RefusesDotDot) {
  EXPECT_EQ(Extract({{"x/../../etc/passwd", AE_IFREG, "root::0:0::/:/bin/sh"}})
                .message(),
            absl::StrCat("refusing 'x/../../etc/passwd': it escapes ", dest_));
  EXPECT_EQ(Extract({{"../x", AE_IFREG, "x"}}).message(),
            absl::StrCat("refusing '../x': it escapes ", dest_));
  EXPECT_NE(access((root_ + "/x").c_str(), F_OK), 0);
}

TEST_F(CopyTest, RefusesAbsolutePaths) {
  // An absolute path into the test's own tree: a bug here writes nothing
  // that matters.
  const std::string absolute = outside_ + "/x";
  const absl::Status status = Extract({{absolute, AE_IFREG, "x"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(),
            absl::StrCat("refusing '", absolute, "': it escapes ", dest_));
  EXPECT_EQ(Extract({{"/etc/x", AE_IFREG, "x"}}).message(),
            absl::StrCat("refusing '/etc/x': it escapes ", dest_));
  EXPECT_NE(access(absolute.c_str(), F_OK), 0);
}

TEST_F(CopyTest, RefusesAFileThroughASymlinkOfTheArchive) {
  const absl::Status status = Extract({{"x", AE_IFDIR, ""},
                                       {"x/l", AE_IFLNK, outside_},
                                       {"x/l/passwd", AE_IFREG, "owned"}});
  EXPECT_EQ(status.message(),
            absl::StrCat("refusing 'x/l/passwd': it escapes ", dest_));
  EXPECT_NE(access((outside_ + "/passwd").c_str(), F_OK), 0);
  // The same with the top itself a symlink.
  EXPECT_EQ(
      Extract({{"y", AE_IFLNK, outside_}, {"y/passwd", AE_IFREG, "o"}}, "y")
          .message(),
      absl::StrCat("refusing 'y/passwd': it escapes ", dest_));
  EXPECT_NE(access((outside_ + "/passwd").c_str(), F_OK), 0);
}

TEST_F(CopyTest, RefusesAFileThroughASymlinkAlreadyThere) {
  ASSERT_EQ(symlink(outside_.c_str(), (dest_ + "/x").c_str()), 0);
  const absl::Status status = Extract({{"x/passwd", AE_IFREG, "owned"}});
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind(
                absl::StrCat("unpacking 'x/passwd' into ", dest_, ": "), 0),
            0u)
      << status;
  EXPECT_NE(access((outside_ + "/passwd").c_str(), F_OK), 0);
}

TEST_F(CopyTest, RefusesEntriesOutsideTheTop) {
  EXPECT_EQ(Extract({{"x", AE_IFDIR, ""}, {"y/z", AE_IFREG, "z"}}).message(),
            "refusing 'y/z': it is not under 'x'");
  EXPECT_EQ(Extract({{"./", AE_IFDIR, ""}}).message(),
            "refusing './': it is not under 'x'");
}

TEST_F(CopyTest, RefusesHardLinksOutOfTheTop) {
  Write(outside_ + "/shadow", "hash", 0600);
  EXPECT_EQ(Extract({{"x", AE_IFDIR, ""},
                     {"x/h", AE_IFREG, "../outside/shadow", true}})
                .message(),
            absl::StrCat("refusing 'x/h': its link target "
                         "'../outside/shadow' escapes ",
                         dest_));
  EXPECT_EQ(
      Extract({{"x", AE_IFDIR, ""}, {"x/h", AE_IFREG, "w/f", true}}).message(),
      "refusing 'x/h': its link target 'w/f' is not under 'x'");
  EXPECT_EQ(Extract({{"x", AE_IFDIR, ""}, {"x/h", AE_IFREG, "x/../../o", true}})
                .message(),
            absl::StrCat("refusing 'x/h': its link target 'x/../../o' escapes ",
                         dest_));
  EXPECT_NE(access((dest_ + "/x/h").c_str(), F_OK), 0);
  // Inside the top, with the top renamed: fine.
  const absl::Status inside = Extract({{"x", AE_IFDIR, ""},
                                       {"x/f", AE_IFREG, "data"},
                                       {"x/h", AE_IFREG, "x/f", true}},
                                      "x", "r");
  ASSERT_TRUE(inside.ok()) << inside;
  struct stat f, h;
  ASSERT_EQ(stat((dest_ + "/r/f").c_str(), &f), 0);
  ASSERT_EQ(stat((dest_ + "/r/h").c_str(), &h), 0);
  EXPECT_EQ(f.st_ino, h.st_ino);
}

TEST_F(CopyTest, RefusesADirectoryOverAFile) {
  Write(dest_ + "/x", "a file", 0644);
  EXPECT_EQ(Extract({{"x", AE_IFDIR, ""}}).message(),
            absl::StrCat("cannot copy a directory over the non-directory ",
                         dest_, "/x"));
}

TEST_F(CopyTest, AnEmptyStreamIsAnError) {
  StringSource source("");
  EXPECT_FALSE(ExtractTar(source, dest_, "x").ok());
}

TEST_F(CopyTest, WriteTarNamesAMissingSource) {
  StringSink sink;
  const absl::Status status = WriteTar(root_ + "/missing", "m", sink);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            absl::StrCat(root_, "/missing: No such file or directory"));
}

}  // namespace
}  // namespace fcvm::runner::exec
