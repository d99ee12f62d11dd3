#include "rootfs/archive/deb_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsOkAndHolds;

struct TarEntry {
  std::string path;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string link;      // Symlink target.
  std::string hardlink;  // Hard link target.
  int64_t uid = 0, gid = 0;
  std::string uname = "root", gname = "root";
  std::string xattr_name, xattr_value;
  unsigned dev_major = 0, dev_minor = 0;
};

// An xz-compressed tar of `entries`, in memory.
std::string MakeTar(const std::vector<TarEntry>& entries) {
  std::string out(1 << 20, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_xz(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const TarEntry& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_filetype(e, t.type);
    archive_entry_set_perm(e, t.perm);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_uname(e, t.uname.c_str());
    archive_entry_set_gname(e, t.gname.c_str());
    archive_entry_set_mtime(e, 1700000000, 0);
    if (!t.link.empty()) archive_entry_set_symlink(e, t.link.c_str());
    if (!t.hardlink.empty()) archive_entry_set_hardlink(e, t.hardlink.c_str());
    if (t.type == AE_IFCHR)
      archive_entry_set_rdev(e, makedev(t.dev_major, t.dev_minor));
    if (!t.xattr_name.empty()) {
      archive_entry_xattr_add_entry(e, t.xattr_name.c_str(),
                                    t.xattr_value.data(), t.xattr_value.size());
    }
    archive_entry_set_size(
        e, t.type == AE_IFREG && t.hardlink.empty() ? t.data.size() : 0);
    archive_write_header(a, e);
    if (!t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// A .deb: ar of debian-binary, control.tar.xz, data.tar.xz.
std::string WriteDeb(const std::string& name,
                     const std::vector<TarEntry>& control,
                     const std::vector<TarEntry>& data) {
  std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  archive* a = archive_write_new();
  archive_write_set_format_ar_svr4(a);
  archive_write_open_filename(a, path.c_str());
  auto member = [&](const std::string& member_name, const std::string& bytes) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, member_name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, bytes.size());
    archive_write_header(a, e);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  };
  member("debian-binary", "2.0\n");
  member("control.tar.xz", MakeTar(control));
  member("data.tar.xz", MakeTar(data));
  archive_write_close(a);
  archive_write_free(a);
  return path;
}

std::vector<TarEntry> Control() {
  return {{.path = "./control", .data = "Package: demo\nVersion: 1.0\n"},
          {.path = "./postinst", .perm = 0755, .data = "#!/bin/sh\n"},
          {.path = "./md5sums", .data = "x\n"},
          {.path = "./preinst", .perm = 0755, .data = "#!/bin/sh\n"}};
}

std::vector<FileEntry> ReadAll(const std::string& deb, absl::Status* status,
                               std::vector<std::string>* contents = nullptr) {
  std::vector<FileEntry> entries;
  *status = ReadDebData(deb, [&](const FileEntry& e, absl::string_view data) {
    entries.push_back(e);
    if (contents != nullptr) contents->emplace_back(data);
    return absl::OkStatus();
  });
  return entries;
}

TEST(NormalizeEntryPathTest, Normalizes) {
  EXPECT_THAT(NormalizeEntryPath("./usr//bin/../bin/x"),
              IsOkAndHolds("usr/bin/x"));
  EXPECT_THAT(NormalizeEntryPath("/etc/passwd"), IsOkAndHolds("etc/passwd"));
  EXPECT_THAT(NormalizeEntryPath("./"), IsOkAndHolds(""));
  EXPECT_EQ(NormalizeEntryPath("../etc/passwd").status().message(),
            "path '../etc/passwd' escapes the image root");
  EXPECT_FALSE(NormalizeEntryPath("a/../../b").ok());
}

TEST(DebArchiveTest, ControlAndScripts) {
  std::string deb = WriteDeb("ctl.deb", Control(),
                             {{.path = "./", .type = AE_IFDIR, .perm = 0755}});
  absl::StatusOr<DebControl> control = ReadDebControl(deb);
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_EQ(control->control, "Package: demo\nVersion: 1.0\n");
  EXPECT_THAT(control->scripts, ElementsAre("postinst", "preinst"));
}

TEST(DebArchiveTest, EntriesKeepEverythingTheArchiveSays) {
  std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00", 8);  // cap_net_raw
  std::string deb =
      WriteDeb("data.deb", Control(),
               {{.path = "./", .type = AE_IFDIR, .perm = 0755},
                {.path = "./usr/bin/", .type = AE_IFDIR, .perm = 0755},
                {.path = "./usr/bin/tool", .perm = 04755, .data = "ELF..."},
                {.path = "./usr/bin/ping",
                 .perm = 0755,
                 .data = "ping",
                 .xattr_name = "security.capability",
                 .xattr_value = cap},
                {.path = "./usr/bin/alias", .hardlink = "./usr/bin/tool"},
                {.path = "./usr/bin/sh",
                 .type = AE_IFLNK,
                 .perm = 0777,
                 .link = "/bin/busybox"},
                {.path = "./etc/shadow",
                 .perm = 0640,
                 .data = "x",
                 .gid = 42,
                 .gname = "shadow"},
                {.path = "./dev/null",
                 .type = AE_IFCHR,
                 .perm = 0666,
                 .dev_major = 1,
                 .dev_minor = 3}});
  absl::Status status;
  std::vector<std::string> contents;
  std::vector<FileEntry> e = ReadAll(deb, &status, &contents);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(e[0].path, "");
  EXPECT_EQ(e[0].type, FileEntry::Type::kDirectory);
  EXPECT_EQ(e[2].path, "usr/bin/tool");
  EXPECT_EQ(e[2].mode, 04755u);
  EXPECT_EQ(contents[2], "ELF...");
  EXPECT_EQ(e[3].xattrs.at("security.capability"), cap);
  EXPECT_EQ(e[4].type, FileEntry::Type::kHardlink);
  EXPECT_EQ(e[4].link_target, "usr/bin/tool");
  EXPECT_EQ(e[5].type, FileEntry::Type::kSymlink);
  EXPECT_EQ(e[5].link_target, "/bin/busybox");
  EXPECT_EQ(e[6].gid, 42u);
  EXPECT_EQ(e[6].gname, "shadow");
  EXPECT_EQ(e[6].mode, 0640u);
  EXPECT_EQ(e[7].type, FileEntry::Type::kCharDevice);
  EXPECT_EQ(e[7].rdev_major, 1u);
  EXPECT_EQ(e[7].rdev_minor, 3u);
}

TEST(DebArchiveTest, PathTraversalIsRefused) {
  std::string deb =
      WriteDeb("evil.deb", Control(),
               {{.path = "./../../etc/passwd", .data = "root::0:0"}});
  absl::Status status;
  ReadAll(deb, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            absl::StrCat(deb,
                         ": data.tar: path './../../etc/passwd' "
                         "escapes the image root"));
}

TEST(DebArchiveTest, HardLinkOutOfRootIsRefused) {
  std::string deb = WriteDeb("evil-link.deb", Control(),
                             {{.path = "./x", .hardlink = "../../etc/shadow"}});
  absl::Status status;
  ReadAll(deb, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("hard link x: path '../../etc/shadow' "
                        "escapes the image root"));
}

TEST(DebArchiveTest, TruncatedArchiveIsDataLoss) {
  std::string deb =
      WriteDeb("whole.deb", Control(),
               {{.path = "./big", .data = std::string(200000, 'z')}});
  absl::StatusOr<std::string> bytes = ReadFile(deb);
  ASSERT_TRUE(bytes.ok());
  std::string cut = deb + ".cut";
  ASSERT_TRUE(
      WriteFileAtomically(cut, bytes->substr(0, bytes->size() / 2)).ok());
  absl::Status status;
  ReadAll(cut, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(cut));
}

TEST(DebArchiveTest, NotADebian) {
  std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/junk.deb");
  ASSERT_TRUE(
      WriteFileAtomically(path, "this is not an ar archive at all").ok());
  absl::Status status;
  ReadAll(path, &status);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_EQ(ReadDebControl("/nonexistent/x.deb").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace fcvm::rootfs
