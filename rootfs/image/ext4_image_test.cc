#include "rootfs/image/ext4_image.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/entries.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using Type = FileEntry::Type;

std::string TmpPath(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

using testing::MakeEntry;

Ext4Options Options() {
  Ext4Options o;
  o.size_bytes = 64 << 20;
  o.uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  o.hash_seed = {11, 22, 33, 44};
  o.timestamp = 1700000000;
  o.label = "fcvm-test";
  return o;
}

const std::string kCap(
    "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00",
    20);

// A small tree with one of everything.
[[nodiscard]] absl::Status Populate(Ext4Image& image) {
  std::vector<std::pair<FileEntry, std::string>> entries;
  entries.push_back({MakeEntry(Type::kDirectory, "usr", 0755), ""});
  entries.push_back({MakeEntry(Type::kDirectory, "usr/bin", 0755), ""});
  FileEntry bin = MakeEntry(Type::kSymlink, "bin", 0777);
  bin.link_target = "usr/bin";
  entries.push_back({bin, ""});
  entries.push_back(
      {MakeEntry(Type::kFile, "bin/busybox", 0755), std::string(300000, 'B')});
  entries.push_back({MakeEntry(Type::kFile, "usr/bin/su", 04755), "setuid"});
  FileEntry ping = MakeEntry(Type::kFile, "usr/bin/ping", 0755);
  ping.xattrs["security.capability"] = kCap;
  entries.push_back({ping, "ping"});
  FileEntry sh = MakeEntry(Type::kSymlink, "usr/bin/sh", 0777);
  sh.link_target = "/bin/busybox";
  entries.push_back({sh, ""});
  FileEntry hard = MakeEntry(Type::kHardlink, "usr/bin/ls", 0755);
  hard.link_target = "usr/bin/busybox";
  entries.push_back({hard, ""});
  entries.push_back({MakeEntry(Type::kFile, "etc/shadow", 0640, 0, 42),
                     "root:*:19000::::::\n"});
  entries.push_back(
      {MakeEntry(Type::kFile, "home/user/empty", 0600, 1000, 1000), ""});
  FileEntry null = MakeEntry(Type::kCharDevice, "dev/null", 0666);
  null.rdev_major = 1;
  null.rdev_minor = 3;
  entries.push_back({null, ""});
  entries.push_back({MakeEntry(Type::kFifo, "run/initctl", 0600), ""});
  for (const auto& [entry, data] : entries) {
    if (absl::Status s = image.Add(entry, data); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// e2fsck -fn finds nothing to fix (exit 0); its report on failure.
void ExpectFsckClean(const std::string& image) {
  SubprocessOptions options{.argv = {"e2fsck", "-fn", image}};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> fsck = Subprocess::Start(options);
  ASSERT_TRUE(fsck.ok()) << fsck.status();
  absl::StatusOr<Subprocess::Output> out =
      fsck->Communicate("", absl::Seconds(120));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->exit.success()) << "e2fsck " << out->exit.ToString() << ":\n"
                                   << out->stdout_data << out->stderr_data;
}

std::string Debugfs(const std::string& image, const std::string& request) {
  absl::StatusOr<Subprocess::Output> out = RunCommand(
      {.argv = {"debugfs", "-R", request, image}}, absl::Seconds(60));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->stdout_data : "";
}

TEST(Ext4ImageTest, ImageIsCleanAndHoldsExactlyTheEntries) {
  const std::string path = TmpPath("tree.ext4");
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(path, Options());
  ASSERT_TRUE(image.ok()) << image.status();
  absl::Status populated = Populate(**image);
  ASSERT_TRUE(populated.ok()) << populated;
  ASSERT_TRUE((*image)->Finish().ok());

  ExpectFsckClean(path);

  // The file under the symlinked directory landed in usr/bin.
  EXPECT_EQ(Debugfs(path, "cat /usr/bin/busybox"), std::string(300000, 'B'));
  std::string su = Debugfs(path, "stat /usr/bin/su");
  EXPECT_THAT(su, HasSubstr("Mode:  04755"));
  EXPECT_THAT(su, HasSubstr("User:     0   Group:     0"));
  std::string shadow = Debugfs(path, "stat /etc/shadow");
  EXPECT_THAT(shadow, HasSubstr("Mode:  0640"));
  EXPECT_THAT(shadow, HasSubstr("Group:    42"));
  EXPECT_THAT(Debugfs(path, "stat /home/user/empty"),
              HasSubstr("User:  1000   Group:  1000"));
  EXPECT_THAT(Debugfs(path, "stat /usr/bin/sh"),
              HasSubstr("Fast link dest: \"/bin/busybox\""));
  EXPECT_THAT(Debugfs(path, "stat /bin"),
              HasSubstr("Fast link dest: \"usr/bin\""));
  std::string busybox = Debugfs(path, "stat /usr/bin/busybox");
  EXPECT_THAT(busybox, HasSubstr("Links: 2"));  // busybox + its hard link ls.
  EXPECT_THAT(Debugfs(path, "stat /dev/null"),
              HasSubstr("Device major/minor number: 01:03"));
  EXPECT_THAT(Debugfs(path, "stat /run/initctl"), HasSubstr("Type: FIFO"));
  EXPECT_THAT(Debugfs(path, "ea_list /usr/bin/ping"),
              HasSubstr("security.capability"));
  // Every time is the fixed timestamp (2023-11-14 22:13:20 UTC).
  EXPECT_THAT(su, HasSubstr("mtime: 0x6553f100"));
  EXPECT_THAT(
      Debugfs(path, "stats"),
      HasSubstr(
          "Filesystem UUID:          01020304-0506-0708-090a-0b0c0d0e0f10"));
}

TEST(Ext4ImageTest, SameInputsSameBytes) {
  std::string hashes[2];
  for (int i = 0; i < 2; ++i) {
    const std::string path = TmpPath(absl::StrCat("same", i, ".ext4"));
    absl::StatusOr<std::unique_ptr<Ext4Image>> image =
        Ext4Image::Create(path, Options());
    ASSERT_TRUE(image.ok());
    absl::Status populated = Populate(**image);
    ASSERT_TRUE(populated.ok()) << populated;
    ASSERT_TRUE((*image)->Finish().ok());
    absl::StatusOr<std::string> hash = Sha256File(path);
    ASSERT_TRUE(hash.ok()) << hash.status();
    hashes[i] = *hash;
  }
  EXPECT_EQ(hashes[0], hashes[1]);
}

TEST(Ext4ImageTest, SymlinkOutOfRootIsRefused) {
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(TmpPath("escape.ext4"), Options());
  ASSERT_TRUE(image.ok());
  FileEntry up = MakeEntry(Type::kSymlink, "up", 0777);
  up.link_target = "../../..";
  ASSERT_TRUE((*image)->Add(up, "").ok());  // A dangling link is fine...
  absl::Status status =
      (*image)->Add(MakeEntry(Type::kFile, "up/etc/passwd", 0644), "x");
  EXPECT_EQ(status.code(),
            absl::StatusCode::kInvalidArgument);  // ...going through it is not.
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr(
          "leads out of the image root through symlink 'up' -> '../../..'"));
  // An absolute link is followed inside the image.
  FileEntry etc = MakeEntry(Type::kSymlink, "etc2", 0777);
  etc.link_target = "/etc";
  ASSERT_TRUE((*image)->Add(MakeEntry(Type::kDirectory, "etc", 0755), "").ok());
  ASSERT_TRUE((*image)->Add(etc, "").ok());
  EXPECT_TRUE((*image)
                  ->Add(MakeEntry(Type::kFile, "etc2/hostname", 0644), "fcvm\n")
                  .ok());
  ASSERT_TRUE((*image)->Finish().ok());
  ExpectFsckClean(TmpPath("escape.ext4"));
  EXPECT_EQ(Debugfs(TmpPath("escape.ext4"), "cat /etc/hostname"), "fcvm\n");
}

TEST(Ext4ImageTest, ConflictsAndSymlinkLoops) {
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(TmpPath("conflict.ext4"), Options());
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE((*image)->Add(MakeEntry(Type::kFile, "etc/a", 0644), "1").ok());
  absl::Status again =
      (*image)->Add(MakeEntry(Type::kFile, "etc/a", 0644), "2");
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()),
              HasSubstr("adding '/etc/a': the path exists already"));
  // A directory seen twice keeps its first attributes.
  EXPECT_TRUE((*image)->Add(MakeEntry(Type::kDirectory, "etc", 0700), "").ok());
  FileEntry loop = MakeEntry(Type::kSymlink, "loop", 0777);
  loop.link_target = "loop";
  ASSERT_TRUE((*image)->Add(loop, "").ok());
  EXPECT_THAT(
      std::string(
          (*image)->Add(MakeEntry(Type::kFile, "loop/x", 0644), "").message()),
      HasSubstr("too many symlinks"));
  ASSERT_TRUE((*image)->Finish().ok());
  EXPECT_THAT(Debugfs(TmpPath("conflict.ext4"), "stat /etc"),
              HasSubstr("Mode:  0755"));
}

// Merged /usr: "bin" is a symlink to usr/bin before a package's "bin/"
// directory entry arrives; the entry is taken as that directory.
TEST(Ext4ImageTest, DirectoryEntryThroughSymlinkToDirectory) {
  const std::string path = TmpPath("merged.ext4");
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(path, Options());
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(
      (*image)->Add(MakeEntry(Type::kDirectory, "usr/bin", 0755), "").ok());
  FileEntry bin = MakeEntry(Type::kSymlink, "bin", 0777);
  bin.link_target = "usr/bin";
  ASSERT_TRUE((*image)->Add(bin, "").ok());
  EXPECT_TRUE((*image)->Add(MakeEntry(Type::kDirectory, "bin", 0700), "").ok());
  EXPECT_TRUE((*image)->Add(MakeEntry(Type::kFile, "bin/sh", 0755), "sh").ok());
  // A symlink to a file is no directory.
  FileEntry file_link = MakeEntry(Type::kSymlink, "sh", 0777);
  file_link.link_target = "bin/sh";
  ASSERT_TRUE((*image)->Add(file_link, "").ok());
  EXPECT_EQ((*image)->Add(MakeEntry(Type::kDirectory, "sh", 0755), "").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_GT((*image)->used_blocks(), 0u);
  ASSERT_TRUE((*image)->Finish().ok());
  ExpectFsckClean(path);
  EXPECT_EQ(Debugfs(path, "cat /usr/bin/sh"), "sh");
  EXPECT_THAT(Debugfs(path, "stat /bin"), HasSubstr("Type: symlink"));
  EXPECT_THAT(Debugfs(path, "stat /usr/bin"), HasSubstr("Mode:  0755"));
}

TEST(Ext4ImageTest, LargeDirectoriesGrow) {
  const std::string path = TmpPath("large.ext4");
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(path, Options());
  ASSERT_TRUE(image.ok());
  // Files, symlinks and hard links, enough to fill many directory blocks.
  ASSERT_TRUE(
      (*image)->Add(MakeEntry(Type::kFile, "man/base.gz", 0644), "x").ok());
  for (int i = 0; i < 600; ++i) {
    std::string n = absl::StrCat("man/page-with-a-long-name-", i);
    absl::Status s =
        (*image)->Add(MakeEntry(Type::kFile, n + ".gz", 0644), "y");
    ASSERT_TRUE(s.ok()) << s;
    FileEntry link = MakeEntry(Type::kSymlink, n + ".link.gz", 0777);
    link.link_target = "base.gz";
    s = (*image)->Add(link, "");
    ASSERT_TRUE(s.ok()) << s;
    FileEntry hard = MakeEntry(Type::kHardlink, n + ".hard.gz", 0644);
    hard.link_target = "man/base.gz";
    s = (*image)->Add(hard, "");
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE((*image)->Finish().ok());
  ExpectFsckClean(path);
  EXPECT_THAT(Debugfs(path, "stat /man/base.gz"), HasSubstr("Links: 601"));
}

TEST(Ext4ImageTest, ManyBlockGroups) {
  // 1 GiB: eight block groups with flex_bg, so group descriptors, their
  // flags and checksums must all be right.
  Ext4Options options = Options();
  options.size_bytes = 1ull << 30;
  const std::string path = TmpPath("groups.ext4");
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(path, options);
  ASSERT_TRUE(image.ok());
  for (int d = 0; d < 40; ++d) {
    for (int f = 0; f < 40; ++f) {
      absl::Status s = (*image)->Add(
          MakeEntry(Type::kFile, absl::StrCat("d", d, "/f", f), 0644),
          std::string(20000, 'q'));
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  ASSERT_TRUE((*image)->Finish().ok());
  ExpectFsckClean(path);
  EXPECT_EQ(Debugfs(path, "cat /d39/f39"), std::string(20000, 'q'));
}

TEST(Ext4ImageTest, BadOptions) {
  Ext4Options o = Options();
  o.size_bytes = 4096;
  EXPECT_EQ(Ext4Image::Create(TmpPath("tiny.ext4"), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Ext4Image::Create("/nonexistent/dir/x.ext4", Options()).ok());
}

}  // namespace
}  // namespace fcvm::rootfs
