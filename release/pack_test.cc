#include "release/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <utime.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "gtest/gtest.h"
#include "release/manifest.h"

namespace fcvm::release {
namespace {

std::string TmpDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  mkdir(dir.c_str(), 0755);
  return dir;
}

void Write(const std::string& path, const std::string& data, time_t mtime,
           mode_t mode) {
  ASSERT_TRUE(WriteFileAtomically(path, data).ok()) << path;
  chmod(path.c_str(), mode);
  struct utimbuf times = {mtime, mtime};
  utime(path.c_str(), &times);
}

// The same release inputs laid out under `dir` with the given mtimes and
// modes, listed in `reverse` order or not.
PackRequest Inputs(const std::string& dir, time_t mtime, mode_t mode,
                   bool reverse) {
  Write(dir + "/fcvm", "#!/bin/sh\necho fcvm\n", mtime, mode | 0100);
  Write(dir + "/vmlinux", std::string(100000, 'k'), mtime, mode);
  Write(dir + "/config", "CONFIG_X=y\n", mtime, mode);
  Write(dir + "/base.ext4", std::string(3 << 20, '\0') + "base", mtime, mode);
  Write(dir + "/nginx.tar", "oci", mtime, mode);
  Write(dir + "/nginx.ext4", "ext4", mtime, mode);
  Write(dir + "/amd64.lock", "lock\n", mtime, mode);
  PackRequest request;
  request.manifest.set_version("9.9.9");
  request.manifest.set_arch("x86_64");
  request.manifest.set_commit("0123abcd");
  request.manifest.set_source_date_epoch(1700000000);
  request.manifest.set_kernel("vmlinux");
  request.manifest.set_kernel_config("kernel.config");
  request.manifest.set_rootfs("base.ext4");
  ImageAssets* image = request.manifest.add_images();
  image->set_name("nginx");
  image->set_oci("images/nginx.oci.tar");
  image->set_rootfs("images/nginx.rootfs.ext4");
  request.files = {
      {"bin/fcvm", dir + "/fcvm", true},
      {"share/fcvm/vmlinux", dir + "/vmlinux", false},
      {"share/fcvm/kernel.config", dir + "/config", false},
      {"share/fcvm/base.ext4", dir + "/base.ext4", false},
      {"share/fcvm/images/nginx.oci.tar", dir + "/nginx.tar", false},
      {"share/fcvm/images/nginx.rootfs.ext4", dir + "/nginx.ext4", false},
      {"share/fcvm/locks/images/base/amd64.lock", dir + "/amd64.lock", false},
  };
  request.inputs = {{"images/base/amd64.lock", dir + "/amd64.lock"}};
  if (reverse) {
    std::reverse(request.files.begin(), request.files.end());
  }
  request.out = dir + "/out.tar.gz";
  return request;
}

struct Entry {
  std::string path;
  int64_t uid, gid, mtime;
  int mode;
  std::string data;
};

std::vector<Entry> ReadEntries(const std::string& tarball) {
  std::vector<Entry> entries;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, tarball.c_str(), 1 << 16),
            ARCHIVE_OK);
  archive_entry* entry;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    Entry e{archive_entry_pathname(entry),
            archive_entry_uid(entry),
            archive_entry_gid(entry),
            archive_entry_mtime(entry),
            static_cast<int>(archive_entry_mode(entry)),
            ""};
    char buffer[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buffer, sizeof(buffer))) > 0) {
      e.data.append(buffer, static_cast<size_t>(n));
    }
    entries.push_back(std::move(e));
  }
  archive_read_free(a);
  return entries;
}

TEST(PackTest, SameInputsSameBytesWhereverAndWhenever) {
  const std::string one = TmpDir("one"), two = TmpDir("two-elsewhere");
  PackRequest a = Inputs(one, 1000, 0600, false);
  PackRequest b = Inputs(two, 2000000000, 0664, true);
  ASSERT_TRUE(Pack(a).ok());
  ASSERT_TRUE(Pack(b).ok());
  absl::StatusOr<std::string> bytes_a = ReadFile(a.out),
                              bytes_b = ReadFile(b.out);
  ASSERT_TRUE(bytes_a.ok() && bytes_b.ok());
  EXPECT_EQ(Sha256Hex(*bytes_a), Sha256Hex(*bytes_b));
  // No trace of where the inputs were, nor of the gzip time.
  const std::vector<Entry> entries = ReadEntries(a.out);
  for (const Entry& e : entries) {
    EXPECT_EQ(e.data.find(one), std::string::npos) << e.path;
  }
  ASSERT_GE(bytes_a->size(), 10u);
  EXPECT_EQ(bytes_a->substr(4, 4), std::string(4, '\0'));  // gzip MTIME
}

TEST(PackTest, Entries) {
  PackRequest request = Inputs(TmpDir("entries"), 1000, 0640, false);
  ASSERT_TRUE(Pack(request).ok());
  const std::vector<Entry> entries = ReadEntries(request.out);
  std::vector<std::string> paths;
  for (const Entry& e : entries) {
    // libarchive writes directories with a trailing slash.
    paths.push_back(S_ISDIR(e.mode) ? e.path.substr(0, e.path.size() - 1)
                                    : e.path);
    EXPECT_EQ(e.uid, 0);
    EXPECT_EQ(e.gid, 0);
    EXPECT_EQ(e.mtime, 1700000000);
  }
  const std::string top = "fcvm-9.9.9-linux-x86_64";
  const std::vector<std::string> expected = {
      top,
      top + "/SHA256SUMS",
      top + "/bin",
      top + "/bin/fcvm",
      top + "/share",
      top + "/share/fcvm",
      top + "/share/fcvm/MANIFEST.json",
      top + "/share/fcvm/base.ext4",
      top + "/share/fcvm/images",
      top + "/share/fcvm/images/nginx.oci.tar",
      top + "/share/fcvm/images/nginx.rootfs.ext4",
      top + "/share/fcvm/kernel.config",
      top + "/share/fcvm/locks",
      top + "/share/fcvm/locks/images",
      top + "/share/fcvm/locks/images/base",
      top + "/share/fcvm/locks/images/base/amd64.lock",
      top + "/share/fcvm/vmlinux",
  };
  EXPECT_EQ(paths, expected);
  for (const Entry& e : entries) {
    if (e.path == top + "/bin/fcvm" || S_ISDIR(e.mode)) {  // 0755
      EXPECT_EQ(e.mode & 07777, 0755) << e.path;
    } else {
      EXPECT_EQ(e.mode & 07777, 0644) << e.path;
    }
  }
  // SHA256SUMS covers every file but itself; MANIFEST.json lists every file
  // but itself and SHA256SUMS, with sizes, modes and digests.
  absl::StatusOr<Sums> sums = ParseSums(entries[1].data, "SHA256SUMS");
  ASSERT_TRUE(sums.ok()) << sums.status();
  absl::StatusOr<ReleaseManifest> manifest =
      ParseManifest(entries[6].data, "MANIFEST.json");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->name(), top);
  EXPECT_EQ(manifest->commit(), "0123abcd");
  EXPECT_EQ(manifest->files_size(), 7);
  EXPECT_EQ(sums->size(), 8u);
  EXPECT_EQ(sums->at("share/fcvm/MANIFEST.json"), Sha256Hex(entries[6].data));
  for (const Entry& e : entries) {
    if (S_ISDIR(e.mode) || e.path == top + "/SHA256SUMS") continue;
    EXPECT_EQ(sums->at(e.path.substr(top.size() + 1)), Sha256Hex(e.data))
        << e.path;
  }
  for (const FileEntry& file : manifest->files()) {
    EXPECT_EQ(sums->at(file.path()), file.sha256());
  }
  ASSERT_EQ(manifest->inputs_size(), 1);
  EXPECT_EQ(manifest->inputs(0).sha256(), Sha256Hex("lock\n"));
}

TEST(PackTest, Refusals) {
  const std::string dir = TmpDir("refusals");
  PackRequest twice = Inputs(dir, 1, 0644, false);
  twice.files.push_back(twice.files[0]);
  EXPECT_NE(Pack(twice).message().find("given twice"), absl::string_view::npos);
  PackRequest missing = Inputs(dir, 1, 0644, false);
  missing.files[1].source = dir + "/nothing";
  EXPECT_NE(Pack(missing).message().find(dir + "/nothing"),
            absl::string_view::npos);
  PackRequest role = Inputs(dir, 1, 0644, false);
  role.manifest.set_kernel("bzImage");
  EXPECT_NE(Pack(role).message().find("asset 'bzImage'"),
            absl::string_view::npos);
  PackRequest escape = Inputs(dir, 1, 0644, false);
  escape.files[0].path = "../fcvm";
  EXPECT_NE(Pack(escape).message().find("not allowed"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace fcvm::release
