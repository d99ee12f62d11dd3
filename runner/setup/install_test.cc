#include "runner/setup/install.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "release/manifest.h"
#include "release/manifest.pb.h"
#include "release/pack.h"

namespace fcvm::runner::setup {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh directory under TEST_TMPDIR for the running test.
std::string TestDir() {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/", info->name());
  EXPECT_TRUE(RemoveTree(dir).ok());
  EXPECT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  return dir;
}

void Write(const std::string& path, const std::string& data,
           mode_t mode = 0644) {
  ASSERT_TRUE(WriteFileAtomically(path, data, mode, Durability::kUnsynced).ok())
      << path;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : "";
}

// The names in `dir`, but for . and ..
std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (d == nullptr) return names;
  while (const dirent* entry = readdir(d.get())) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  return names;
}

std::string LinkTarget(const std::string& path) {
  char target[4096];
  const ssize_t n = readlink(path.c_str(), target, sizeof(target));
  return n < 0 ? "" : std::string(target, static_cast<size_t>(n));
}

mode_t Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Bytes that gzip cannot shrink, so that half of a tarball ends inside a
// file's data.
std::string Noise(size_t size, uint32_t seed) {
  std::string data(size, '\0');
  uint32_t x = seed;
  for (char& c : data) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

constexpr char kHost[] = "x86_64";

// Packs a tiny release with release::Pack: `commit` changes bin/fcvm and
// base.ext4, so two commits of one version are different builds.
std::string MakeRelease(const std::string& dir, const std::string& version,
                        const std::string& arch = kHost,
                        const std::string& commit = "c0ffee",
                        const std::string& name = "") {
  const std::string src = absl::StrCat(dir, "/src-", version, "-", commit);
  mkdir(src.c_str(), 0755);
  Write(src + "/fcvm",
        absl::StrCat("#!/bin/sh\necho fcvm ", version, " ", commit, "\n"),
        0755);
  Write(src + "/vmlinux", "kernel");
  Write(src + "/config", "CONFIG_X=y\n");
  Write(src + "/base.ext4",
        Noise(256 << 10, commit.size() + version.size()) + commit);
  Write(src + "/nginx.tar", "oci");
  Write(src + "/nginx.ext4", "ext4");
  release::PackRequest request;
  release::ReleaseManifest& manifest = request.manifest;
  manifest.set_version(version);
  manifest.set_arch(arch);
  manifest.set_commit(commit);
  manifest.set_source_date_epoch(1700000000);
  manifest.set_kernel("vmlinux");
  manifest.set_kernel_config("kernel.config");
  manifest.set_rootfs("base.ext4");
  release::ImageAssets* image = manifest.add_images();
  image->set_name("nginx");
  image->set_oci("images/nginx.oci.tar");
  image->set_rootfs("images/nginx.rootfs.ext4");
  request.files = {
      {"bin/fcvm", src + "/fcvm", true},
      {"share/fcvm/vmlinux", src + "/vmlinux", false},
      {"share/fcvm/kernel.config", src + "/config", false},
      {"share/fcvm/base.ext4", src + "/base.ext4", false},
      {"share/fcvm/images/nginx.oci.tar", src + "/nginx.tar", false},
      {"share/fcvm/images/nginx.rootfs.ext4", src + "/nginx.ext4", false},
  };
  request.out = absl::StrCat(
      dir, "/", name.empty() ? release::ReleaseName(version, arch) : name,
      ".tar.gz");
  const absl::Status packed = release::Pack(request);
  EXPECT_TRUE(packed.ok()) << packed;
  return request.out;
}

// One archive entry, enough to copy a release tarball with changes.
struct Entry {
  std::string path;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string symlink;
  std::string hardlink;
};

struct ArchiveFree {
  void operator()(archive* a) const { archive_free(a); }
};

std::vector<Entry> ReadEntries(const std::string& tarball) {
  std::vector<Entry> entries;
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), tarball.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    ADD_FAILURE() << tarball << ": " << archive_error_string(a.get());
    return entries;
  }
  archive_entry* header;
  while (archive_read_next_header(a.get(), &header) == ARCHIVE_OK) {
    Entry entry;
    entry.path = archive_entry_pathname(header);
    entry.type = archive_entry_filetype(header);
    entry.perm = archive_entry_perm(header);
    char buffer[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buffer, sizeof(buffer))) > 0) {
      entry.data.append(buffer, static_cast<size_t>(n));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

enum class Compression { kGzip, kZstd };

void WriteEntries(const std::vector<Entry>& entries, const std::string& out,
                  Compression compression = Compression::kGzip) {
  std::unique_ptr<archive, ArchiveFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  if (compression == Compression::kZstd) {
    ASSERT_EQ(archive_write_add_filter_zstd(a.get()), ARCHIVE_OK);
  } else {
    archive_write_add_filter_gzip(a.get());
  }
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK)
      << archive_error_string(a.get());
  for (const Entry& entry : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> header(
        archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(header.get(), entry.path.c_str());
    archive_entry_set_filetype(header.get(), entry.type);
    archive_entry_set_perm(header.get(), entry.perm);
    archive_entry_set_mtime(header.get(), 1700000000, 0);
    if (!entry.symlink.empty()) {
      archive_entry_set_symlink(header.get(), entry.symlink.c_str());
    }
    if (!entry.hardlink.empty()) {
      archive_entry_set_hardlink(header.get(), entry.hardlink.c_str());
    }
    archive_entry_set_size(header.get(),
                           entry.type == AE_IFREG ? entry.data.size() : 0);
    ASSERT_EQ(archive_write_header(a.get(), header.get()), ARCHIVE_OK)
        << entry.path << ": " << archive_error_string(a.get());
    if (!entry.data.empty()) {
      ASSERT_EQ(
          archive_write_data(a.get(), entry.data.data(), entry.data.size()),
          static_cast<la_ssize_t>(entry.data.size()));
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

Entry* Find(std::vector<Entry>& entries, const std::string& path) {
  for (Entry& entry : entries) {
    if (entry.path == path) return &entry;
  }
  ADD_FAILURE() << "no entry " << path;
  static Entry none;
  return &none;
}

InstallOptions Options(const std::string& tarball, const std::string& prefix) {
  InstallOptions options;
  options.tarball = tarball;
  options.prefix = prefix;
  options.host_arch = kHost;
  return options;
}

// The message Install gives for `cause`.
std::string Refusal(const std::string& tarball, const std::string& cause) {
  return absl::StrCat("installing ", tarball, ": ", cause);
}

using NoUsers =
    std::function<absl::StatusOr<std::vector<std::string>>(const std::string&)>;
const NoUsers kNoUsers = [](const std::string&) {
  return std::vector<std::string>{};
};

TEST(InstallTest, InstallsAReleaseWithItsModesAndPointsCurrentAtIt) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/var/lib/fcvm";  // Parents made too.
  const std::string tarball = MakeRelease(dir, "1.0.0");
  const mode_t old_umask = umask(077);  // Must not decide any mode.
  std::vector<std::string> progress;
  InstallOptions options = Options(tarball, prefix);
  options.progress = [&](const std::string& line) { progress.push_back(line); };
  absl::StatusOr<Installed> installed = Install(options);
  umask(old_umask);
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(installed->version, "1.0.0");
  EXPECT_EQ(installed->arch, "x86_64");
  EXPECT_EQ(installed->commit, "c0ffee");
  EXPECT_EQ(installed->dir, prefix + "/1.0.0");
  EXPECT_FALSE(installed->already);
  uint64_t bytes = 0;
  for (const Entry& entry : ReadEntries(tarball)) bytes += entry.data.size();
  EXPECT_EQ(installed->bytes, bytes);
  EXPECT_FALSE(progress.empty());

  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "current"}));
  EXPECT_EQ(Names(prefix + "/1.0.0"),
            (std::set<std::string>{"SHA256SUMS", "bin", "share"}));
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"),
            "#!/bin/sh\necho fcvm 1.0.0 c0ffee\n");
  EXPECT_EQ(Read(prefix + "/1.0.0/share/fcvm/vmlinux"), "kernel");
  EXPECT_EQ(Mode(prefix), 0755u);
  EXPECT_EQ(Mode(prefix + "/.lock"), 0644u);
  EXPECT_EQ(Mode(prefix + "/1.0.0"), 0755u);
  EXPECT_EQ(Mode(prefix + "/1.0.0/bin"), 0755u);
  EXPECT_EQ(Mode(prefix + "/1.0.0/bin/fcvm"), 0755u);
  EXPECT_EQ(Mode(prefix + "/1.0.0/share/fcvm/images"), 0755u);
  EXPECT_EQ(Mode(prefix + "/1.0.0/share/fcvm/base.ext4"), 0644u);
  EXPECT_EQ(Mode(prefix + "/1.0.0/SHA256SUMS"), 0644u);
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
  EXPECT_EQ(Read(prefix + "/current/share/fcvm/vmlinux"), "kernel");
}

TEST(InstallTest, ReinstallIsAlreadyAndASecondVersionBecomesCurrent) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  const std::string one = MakeRelease(dir, "1.0.0");
  const std::string two = MakeRelease(dir, "2.0.0", kHost, "beef");
  ASSERT_TRUE(Install(Options(one, prefix)).ok());

  absl::StatusOr<Installed> again = Install(Options(one, prefix));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already);
  EXPECT_EQ(again->version, "1.0.0");

  absl::StatusOr<Installed> second = Install(Options(two, prefix));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->already);
  EXPECT_EQ(LinkTarget(prefix + "/current"), "2.0.0");
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "2.0.0", "current"}));

  absl::StatusOr<std::vector<InstalledVersion>> listed = ListInstalled(prefix);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  const InstalledVersion& a = (*listed)[0];
  const InstalledVersion& b = (*listed)[1];
  EXPECT_EQ(a.version, "1.0.0");
  EXPECT_EQ(a.arch, "x86_64");
  EXPECT_EQ(a.commit, "c0ffee");
  EXPECT_EQ(a.dir, prefix + "/1.0.0");
  EXPECT_FALSE(a.current);
  EXPECT_EQ(a.bytes, again->bytes);
  EXPECT_EQ(a.problem, "");
  EXPECT_EQ(b.version, "2.0.0");
  EXPECT_EQ(b.commit, "beef");
  EXPECT_TRUE(b.current);
  EXPECT_EQ(b.bytes, second->bytes);

  // Installing the older one again only moves `current` back.
  absl::StatusOr<Installed> back = Install(Options(one, prefix));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->already);
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
}

TEST(InstallTest, ADifferentBuildOfTheSameVersionReplacesIt) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  const std::string first = MakeRelease(dir, "1.0.0", kHost, "aaaa", "first");
  const std::string second = MakeRelease(dir, "1.0.0", kHost, "bbbb", "second");
  ASSERT_TRUE(Install(Options(first, prefix)).ok());
  absl::StatusOr<Installed> replaced = Install(Options(second, prefix));
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_FALSE(replaced->already);
  EXPECT_EQ(replaced->commit, "bbbb");
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"),
            "#!/bin/sh\necho fcvm 1.0.0 bbbb\n");
  // The old tree went with the staging directory.
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "current"}));
}

TEST(InstallTest, ADifferentBuildInUseIsNotReplaced) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  const std::string first = MakeRelease(dir, "1.0.0", kHost, "aaaa", "first");
  const std::string second = MakeRelease(dir, "1.0.0", kHost, "bbbb", "second");
  ASSERT_TRUE(Install(Options(first, prefix)).ok());
  std::vector<std::string> asked;
  InstallOptions options = Options(second, prefix);
  options.users =
      [&](const std::string& dir) -> absl::StatusOr<std::vector<std::string>> {
    asked.push_back(dir);
    return std::vector<std::string>{"web"};
  };
  absl::StatusOr<Installed> refused = Install(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat(prefix,
                                     "/1.0.0 holds a different build of "
                                     "1.0.0 and is in use by web; stop them "
                                     "first")));
  EXPECT_THAT(asked, ElementsAre(prefix + "/1.0.0"));
  // Nothing changed, nothing left behind.
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"),
            "#!/bin/sh\necho fcvm 1.0.0 aaaa\n");
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "current"}));
  // The same build again is no replacement: nobody is asked.
  asked.clear();
  options = Options(first, prefix);
  options.users = [&](const std::string& dir) {
    asked.push_back(dir);
    return absl::StatusOr<std::vector<std::string>>(
        std::vector<std::string>{"web"});
  };
  absl::StatusOr<Installed> again = Install(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already);
  EXPECT_THAT(asked, ElementsAre());
}

TEST(InstallTest, ZstdTarballsInstallToo) {
  const std::string dir = TestDir();
  std::vector<Entry> entries = ReadEntries(MakeRelease(dir, "1.0.0"));
  const std::string zst = dir + "/fcvm-1.0.0-linux-x86_64.tar.zst";
  WriteEntries(entries, zst, Compression::kZstd);
  absl::StatusOr<Installed> installed = Install(Options(zst, dir + "/prefix"));
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(Read(dir + "/prefix/1.0.0/share/fcvm/vmlinux"), "kernel");
}

TEST(InstallTest, ModesAreMaskedToWhatAReleaseMayHave) {
  const std::string dir = TestDir();
  std::vector<Entry> entries = ReadEntries(MakeRelease(dir, "1.0.0"));
  Find(entries, "fcvm-1.0.0-linux-x86_64/bin/fcvm")->perm = 06777;
  Find(entries, "fcvm-1.0.0-linux-x86_64/share/fcvm/base.ext4")->perm = 0666;
  Find(entries, "fcvm-1.0.0-linux-x86_64/share/")->perm = 01777;
  const std::string tarball = dir + "/modes.tar.gz";
  WriteEntries(entries, tarball);
  ASSERT_TRUE(Install(Options(tarball, dir + "/prefix")).ok());
  EXPECT_EQ(Mode(dir + "/prefix/1.0.0/bin/fcvm"), 0755u);
  EXPECT_EQ(Mode(dir + "/prefix/1.0.0/share/fcvm/base.ext4"), 0644u);
  EXPECT_EQ(Mode(dir + "/prefix/1.0.0/share"), 0755u);
}

TEST(InstallTest, RefusesATarballForAnotherCpuBeforeUnpacking) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  const std::string tarball = MakeRelease(dir, "1.0.0", "aarch64");
  absl::StatusOr<Installed> installed = Install(Options(tarball, prefix));
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(installed.status().message(),
            Refusal(tarball,
                    "fcvm-1.0.0-linux-aarch64 is for aarch64; this host is "
                    "x86_64"));
  EXPECT_EQ(Names(prefix), (std::set<std::string>{".lock"}));
}

// Installs 1.0.0, then checks that `tarball` is refused with `code` and
// `cause` and left 1.0.0 and `current` as they were.
void ExpectRefused(const std::string& dir, const std::string& tarball,
                   absl::StatusCode code, const std::string& cause) {
  const std::string prefix = dir + "/prefix";
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "1.0.0"), prefix)).ok());
  const std::string fcvm = Read(prefix + "/1.0.0/bin/fcvm");
  const std::string base = Read(prefix + "/1.0.0/share/fcvm/base.ext4");

  absl::StatusOr<Installed> installed = Install(Options(tarball, prefix));
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), code) << installed.status();
  EXPECT_EQ(installed.status().message(), Refusal(tarball, cause));
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "current"}));
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"), fcvm);
  EXPECT_EQ(Read(prefix + "/1.0.0/share/fcvm/base.ext4"), base);
}

TEST(InstallTest, RefusesAFileChangedAfterPacking) {
  const std::string dir = TestDir();
  std::vector<Entry> entries =
      ReadEntries(MakeRelease(dir, "2.0.0", kHost, "aaaa"));
  Find(entries, "fcvm-2.0.0-linux-x86_64/share/fcvm/base.ext4")->data[100] ^= 1;
  const std::string tarball = dir + "/tampered.tar.gz";
  WriteEntries(entries, tarball);
  ExpectRefused(dir, tarball, absl::StatusCode::kDataLoss,
                "share/fcvm/base.ext4: sha256 mismatch (the tarball is "
                "damaged or was changed)");
}

TEST(InstallTest, RefusesAFileNotInSha256Sums) {
  const std::string dir = TestDir();
  std::vector<Entry> entries = ReadEntries(MakeRelease(dir, "2.0.0"));
  entries.push_back({"fcvm-2.0.0-linux-x86_64/share/fcvm/extra"});
  const std::string tarball = dir + "/extra.tar.gz";
  WriteEntries(entries, tarball);
  ExpectRefused(dir, tarball, absl::StatusCode::kDataLoss,
                "share/fcvm/extra is not listed in SHA256SUMS (the tarball "
                "is damaged or was changed)");
}

TEST(InstallTest, RefusesAManifestThatDisagreesWithSha256Sums) {
  const std::string dir = TestDir();
  std::vector<Entry> entries = ReadEntries(MakeRelease(dir, "2.0.0"));
  Entry* json =
      Find(entries, "fcvm-2.0.0-linux-x86_64/share/fcvm/MANIFEST.json");
  absl::StatusOr<release::ReleaseManifest> manifest =
      release::ParseManifest(json->data, "test");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  std::string claimed;
  for (release::FileEntry& file : *manifest->mutable_files()) {
    if (file.path() == "share/fcvm/vmlinux") {
      file.set_sha256(std::string(64, 'a'));
      claimed = file.sha256();
    }
  }
  ASSERT_FALSE(claimed.empty());
  json->data = release::ManifestJson(*manifest);
  // SHA256SUMS vouches for the changed manifest, so only the manifest's
  // own list can catch it.
  Entry* sums = Find(entries, "fcvm-2.0.0-linux-x86_64/SHA256SUMS");
  absl::StatusOr<release::Sums> parsed = release::ParseSums(sums->data, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  (*parsed)[release::kManifestPath] = Sha256Hex(json->data);
  sums->data = release::SumsText(*parsed);
  const std::string tarball = dir + "/manifest.tar.gz";
  WriteEntries(entries, tarball);
  ExpectRefused(
      dir, tarball, absl::StatusCode::kDataLoss,
      absl::StrCat("share/fcvm/MANIFEST.json says share/fcvm/vmlinux is 6 "
                   "bytes, mode 0644, sha256 ",
                   claimed, "; the tarball's is 6 bytes, mode 0644, sha256 ",
                   Sha256Hex("kernel"),
                   " (the tarball is damaged or was changed)"));
}

TEST(InstallTest, RefusesEntriesAReleaseCannotHold) {
  const std::string top = "fcvm-2.0.0-linux-x86_64";
  struct Case {
    Entry entry;
    std::string cause;
    bool last = false;  // Else right after SHA256SUMS.
  };
  const std::vector<Case> cases = {
      {{top + "/../x", AE_IFREG, 0644, "x"},
       "'" + top + "/../x' is not a clean relative path under " + top + "/"},
      {{top + "/share//x", AE_IFREG, 0644, "x"},
       "'" + top + "/share//x' is not a clean relative path under " + top +
           "/"},
      {{"/etc/x", AE_IFREG, 0644, "x"},
       "'/etc/x' is outside the top directory " + top + "/"},
      {{top + "/share/fcvm/link", AE_IFLNK, 0777, "", "/etc/passwd"},
       "'" + top +
           "/share/fcvm/link' is a symbolic link (a release holds "
           "directories and regular files only)"},
      {{top + "/share/fcvm/hard", AE_IFREG, 0644, "", "", top + "/bin/fcvm"},
       "'" + top +
           "/share/fcvm/hard' is a hard link (a release holds directories "
           "and regular files only)"},
      {{top + "/share/fcvm/fifo", AE_IFIFO, 0644},
       "'" + top +
           "/share/fcvm/fifo' is a fifo (a release holds directories and "
           "regular files only)"},
      {{"fcvm-3.0.0-linux-x86_64/", AE_IFDIR, 0755},
       "'fcvm-3.0.0-linux-x86_64/' is outside the top directory " + top + "/"},
      {{top + "/", AE_IFDIR, 0755},
       "'" + top + "/': the top directory appears twice"},
      {{top + "/share/fcvm/vmlinux", AE_IFREG, 0644, "kernel"},
       "'" + top + "/share/fcvm/vmlinux' appears twice",
       true},
      {{top + "/nowhere/x", AE_IFREG, 0644, "x"},
       "'" + top +
           "/nowhere/x': its directory is not a directory entry before it"},
  };
  const std::string dir = TestDir();
  const std::vector<Entry> good = ReadEntries(MakeRelease(dir, "2.0.0"));
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.entry.path);
    const std::string case_dir = absl::StrCat(dir, "/", n++);
    ASSERT_EQ(mkdir(case_dir.c_str(), 0755), 0);
    std::vector<Entry> entries = good;
    // Files were unpacked before it, and must go with the staging dir.
    entries.insert(c.last ? entries.end() : entries.begin() + 2, c.entry);
    const std::string tarball = case_dir + "/bad.tar.gz";
    WriteEntries(entries, tarball);
    ExpectRefused(case_dir, tarball, absl::StatusCode::kInvalidArgument,
                  c.cause);
  }
}

TEST(InstallTest, RefusesWhatIsNotAReleaseTarball) {
  const std::string dir = TestDir();
  const std::string tarball = dir + "/notes.tar.gz";
  WriteEntries({{"notes/", AE_IFDIR, 0755}, {"notes/a", AE_IFREG, 0644, "a"}},
               tarball);
  ExpectRefused(dir, tarball, absl::StatusCode::kInvalidArgument,
                "not an fcvm release tarball: its first entry 'notes/' is "
                "not the directory fcvm-VERSION-linux-ARCH/");

  const std::string text = dir + "/text.tar.gz";
  Write(text, "hello");
  absl::StatusOr<Installed> installed = Install(Options(text, dir + "/prefix"));
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(installed.status().message()),
              StartsWith(Refusal(text, "not a tar.gz or tar.zst archive: ")));
}

TEST(InstallTest, ATruncatedTarballLeavesTheInstalledVersionAlone) {
  const std::string dir = TestDir();
  // Another version and another build of the installed one.
  for (const std::string version : {"2.0.0", "1.0.0"}) {
    SCOPED_TRACE(version);
    const std::string whole =
        MakeRelease(dir, version, kHost, "bbbb", "whole-" + version);
    const std::string bytes = Read(whole);
    const std::string tarball = dir + "/truncated-" + version + ".tar.gz";
    Write(tarball, bytes.substr(0, bytes.size() / 2));
    const std::string installed_fcvm = "#!/bin/sh\necho fcvm 1.0.0 c0ffee\n";
    const std::string prefix_dir = dir + "/" + version;
    ASSERT_EQ(mkdir(prefix_dir.c_str(), 0755), 0);
    ASSERT_TRUE(
        Install(Options(MakeRelease(prefix_dir, "1.0.0"), prefix_dir + "/p"))
            .ok());
    absl::StatusOr<Installed> installed =
        Install(Options(tarball, prefix_dir + "/p"));
    ASSERT_FALSE(installed.ok());
    EXPECT_EQ(installed.status().code(), absl::StatusCode::kDataLoss)
        << installed.status();
    EXPECT_EQ(installed.status().message(),
              Refusal(tarball,
                      "reading share/fcvm/base.ext4: truncated gzip input (the "
                      "tarball is damaged or incomplete)"));
    EXPECT_EQ(Names(prefix_dir + "/p"),
              (std::set<std::string>{".lock", "1.0.0", "current"}));
    EXPECT_EQ(LinkTarget(prefix_dir + "/p/current"), "1.0.0");
    EXPECT_EQ(Read(prefix_dir + "/p/1.0.0/bin/fcvm"), installed_fcvm);
  }
}

TEST(InstallTest, TheNextInstallRemovesWhatAKilledOneLeft) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "1.0.0"), prefix)).ok());
  // What kill -9 leaves: a staging dir (half unpacked, or an old tree after
  // the exchange) and a `current` link not yet renamed.
  ASSERT_EQ(mkdir((prefix + "/.staging-AbC123").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((prefix + "/.staging-AbC123/fcvm-2.0.0-linux-x86_64").c_str(),
                  0755),
            0);
  Write(prefix + "/.staging-AbC123/fcvm-2.0.0-linux-x86_64/SHA256SUMS", "x");
  ASSERT_EQ(symlink("2.0.0", (prefix + "/.current-12345").c_str()), 0);
  std::vector<std::string> progress;
  InstallOptions options = Options(MakeRelease(dir, "2.0.0"), prefix);
  options.progress = [&](const std::string& line) { progress.push_back(line); };
  ASSERT_TRUE(Install(options).ok());
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "2.0.0", "current"}));
  EXPECT_THAT(progress, testing::Contains(absl::StrCat(
                            "removing ", prefix,
                            "/.staging-AbC123 (left by an install or rm that "
                            "was killed)")));
}

// Kills an install of another build of 1.0.0 at the progress line that
// starts with `at`, then checks what the next install finds.
void KillInstallAt(const std::string& dir, const std::string& at,
                   const std::string& expected_fcvm) {
  const std::string prefix = dir + "/prefix";
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "1.0.0"), prefix)).ok());
  const std::string other =
      MakeRelease(dir, "1.0.0", kHost, "bbbb", "other-build");
  InstallOptions options = Options(other, prefix);
  options.progress = [&](const std::string& line) {
    if (absl::StartsWith(line, at)) raise(SIGKILL);
  };
  // The test runs no other thread here, so the child may do anything.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (void)Install(options);
    _exit(0);
  }
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  std::set<std::string> names = Names(prefix);
  ASSERT_EQ(names.size(), 4u);
  names.erase(".lock");
  EXPECT_TRUE(absl::StartsWith(*names.begin(), ".staging-")) << *names.begin();
  EXPECT_EQ(names.count("1.0.0"), 1u);
  EXPECT_EQ(names.count("current"), 1u);
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"), expected_fcvm);
  absl::StatusOr<std::vector<InstalledVersion>> listed = ListInstalled(prefix);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);

  ASSERT_TRUE(Install(Options(other, prefix)).ok());
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "current"}));
  EXPECT_EQ(Read(prefix + "/1.0.0/bin/fcvm"),
            "#!/bin/sh\necho fcvm 1.0.0 bbbb\n");
}

TEST(InstallTest, KilledAfterUnpackingLeavesTheOldBuild) {
  KillInstallAt(TestDir(), "checked ", "#!/bin/sh\necho fcvm 1.0.0 c0ffee\n");
}

TEST(InstallTest, KilledAfterTheExchangeLeavesTheNewBuild) {
  KillInstallAt(TestDir(), "replaced ", "#!/bin/sh\necho fcvm 1.0.0 bbbb\n");
}

TEST(InstallTest, WaitsForTheLockHolder) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  const std::string tarball = MakeRelease(dir, "1.0.0");
  ASSERT_EQ(mkdir(prefix.c_str(), 0755), 0);
  const int lock =
      open((prefix + "/.lock").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(flock(lock, LOCK_EX), 0);
  // The installer says it waits, from its own thread; then we let it go.
  int waiting[2];
  ASSERT_EQ(pipe(waiting), 0);
  InstallOptions options = Options(tarball, prefix);
  options.progress = [&](const std::string& line) {
    if (absl::StartsWith(line, "waiting for another install or rm")) {
      EXPECT_EQ(write(waiting[1], "w", 1), 1);
    }
  };
  absl::StatusOr<Installed> installed = absl::UnknownError("not run");
  std::thread installer([&] { installed = Install(options); });
  char c;
  ASSERT_EQ(read(waiting[0], &c, 1), 1);
  EXPECT_EQ(Names(prefix), (std::set<std::string>{".lock"}));
  close(lock);
  installer.join();
  close(waiting[0]);
  close(waiting[1]);
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
}

TEST(InstallTest, RefusesWithoutAHostArch) {
  const std::string dir = TestDir();
  InstallOptions options = Options(MakeRelease(dir, "1.0.0"), dir + "/prefix");
  options.host_arch.clear();
  absl::StatusOr<Installed> installed = Install(options);
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(installed.status().message(),
            Refusal(options.tarball, "the host's CPU (host_arch) is not set"));
}

TEST(ListInstalledTest, AMissingPrefixIsEmptyAndOddDirectoriesAreSkipped) {
  const std::string dir = TestDir();
  absl::StatusOr<std::vector<InstalledVersion>> none =
      ListInstalled(dir + "/nothing");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  const std::string prefix = dir + "/prefix";
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "1.0.0"), prefix)).ok());
  ASSERT_EQ(mkdir((prefix + "/unrelated").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((prefix + "/broken").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((prefix + "/broken/share").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((prefix + "/broken/share/fcvm").c_str(), 0755), 0);
  Write(prefix + "/broken/share/fcvm/MANIFEST.json", "{");
  absl::StatusOr<std::vector<InstalledVersion>> listed = ListInstalled(prefix);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].version, "1.0.0");
  EXPECT_EQ((*listed)[0].problem, "");
  EXPECT_TRUE((*listed)[0].current);
  EXPECT_EQ((*listed)[1].version, "broken");
  EXPECT_EQ((*listed)[1].bytes, 1u);
  EXPECT_FALSE((*listed)[1].current);
  EXPECT_THAT(
      (*listed)[1].problem,
      StartsWith(prefix + "/broken/share/fcvm/MANIFEST.json: not a release "
                          "manifest"));
}

TEST(RemoveInstalledTest, RefusesCurrentAndUsedVersionsAndRemovesOthers) {
  const std::string dir = TestDir();
  const std::string prefix = dir + "/prefix";
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "1.0.0"), prefix)).ok());
  ASSERT_TRUE(Install(Options(MakeRelease(dir, "2.0.0"), prefix)).ok());

  absl::Status current = RemoveInstalled(prefix, "2.0.0", false, kNoUsers);
  EXPECT_EQ(current.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(current.message(),
            absl::StrCat("removing 2.0.0 from ", prefix,
                         ": 2.0.0 is the current version (", prefix,
                         "/current points at it); install another version "
                         "first, or force"));

  std::vector<std::string> asked;
  absl::Status used = RemoveInstalled(
      prefix, "1.0.0", false,
      [&](const std::string& dir) -> absl::StatusOr<std::vector<std::string>> {
        asked.push_back(dir);
        return std::vector<std::string>{"web", "db"};
      });
  EXPECT_EQ(used.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(used.message(),
            absl::StrCat("removing 1.0.0 from ", prefix, ": ", prefix,
                         "/1.0.0 is in use by web, db"));
  EXPECT_THAT(asked, ElementsAre(prefix + "/1.0.0"));

  absl::Status failed = RemoveInstalled(
      prefix, "1.0.0", false,
      [](const std::string&) -> absl::StatusOr<std::vector<std::string>> {
        return absl::UnavailableError("state store busy");
      });
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(failed.message(),
            absl::StrCat("removing 1.0.0 from ", prefix,
                         ": finding what uses it: state store busy"));
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "1.0.0", "2.0.0", "current"}));

  ASSERT_TRUE(RemoveInstalled(prefix, "1.0.0", false, kNoUsers).ok());
  EXPECT_EQ(Names(prefix),
            (std::set<std::string>{".lock", "2.0.0", "current"}));
  absl::StatusOr<std::vector<InstalledVersion>> listed = ListInstalled(prefix);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].version, "2.0.0");

  absl::Status gone = RemoveInstalled(prefix, "1.0.0", false, kNoUsers);
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gone.message(),
            absl::StrCat("removing 1.0.0 from ", prefix,
                         ": 1.0.0 is not installed (no directory ", prefix,
                         "/1.0.0)"));

  ASSERT_TRUE(RemoveInstalled(prefix, "2.0.0", true, kNoUsers).ok());
  EXPECT_EQ(Names(prefix), (std::set<std::string>{".lock"}));
}

TEST(RemoveInstalledTest, RefusesWhatIsNotAVersion) {
  const std::string dir = TestDir();
  for (const std::string name : {"../x", "current", ".lock", "", "a/b"}) {
    absl::Status removed = RemoveInstalled(dir, name, true, kNoUsers);
    EXPECT_EQ(removed.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(removed.message(),
              absl::StrCat("removing ", name, " from ", dir, ": '", name,
                           "' is not a version"));
  }
  absl::Status missing =
      RemoveInstalled(dir + "/none", "1.0.0", false, kNoUsers);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(),
            absl::StrCat("removing 1.0.0 from ", dir,
                         "/none: 1.0.0 is not installed (no ", dir, "/none)"));
}

// Signing and checking with signify-openbsd, as release/README.md does.
class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> signify = FindProgram("signify-openbsd");
    if (!signify.ok()) {
      GTEST_SKIP() << "needs signify-openbsd (Debian package signify-openbsd)";
    }
    signify_ = *signify;
    dir_ = TestDir();
  }

  void Run(std::vector<std::string> argv) {
    SubprocessOptions options;
    options.argv = std::move(argv);
    options.argv.insert(options.argv.begin(), signify_);
    absl::StatusOr<Subprocess::Output> output =
        RunCommand(std::move(options), absl::Seconds(30));
    ASSERT_TRUE(output.ok()) << output.status();
  }

  // A key pair KEY.pub, KEY.sec.
  void MakeKey(const std::string& key) {
    Run({"-G", "-n", "-p", key + ".pub", "-s", key + ".sec"});
  }

  // Signs the SHA256SUMS of `tarball` into `signature`.
  void Sign(const std::string& tarball, const std::string& key,
            const std::string& signature) {
    std::vector<Entry> entries = ReadEntries(tarball);
    const std::string sums = dir_ + "/SHA256SUMS";
    Write(sums, Find(entries, "fcvm-1.0.0-linux-x86_64/SHA256SUMS")->data);
    Run({"-S", "-s", key + ".sec", "-m", sums, "-x", signature});
  }

  std::string signify_;
  std::string dir_;
};

TEST_F(SignatureTest, VerifiesWithTheRightKeyOnly) {
  const std::string tarball = MakeRelease(dir_, "1.0.0");
  MakeKey(dir_ + "/release");
  MakeKey(dir_ + "/other");
  Sign(tarball, dir_ + "/release", tarball + ".sig");
  Sign(tarball, dir_ + "/other", dir_ + "/other.sig");

  // The signature from another key: refused, nothing installed.
  const std::string prefix = dir_ + "/prefix";
  InstallOptions options = Options(tarball, prefix);
  options.public_key = dir_ + "/release.pub";
  options.signature = dir_ + "/other.sig";
  absl::StatusOr<Installed> refused = Install(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(
      std::string(refused.status().message()),
      StartsWith(Refusal(tarball,
                         absl::StrCat("signature ", dir_,
                                      "/other.sig does not verify with ", dir_,
                                      "/release.pub (signify-openbsd "
                                      "exited with status 1: "))));
  EXPECT_EQ(Names(prefix), (std::set<std::string>{".lock"}));

  // TARBALL.sig by default.
  options.signature.clear();
  absl::StatusOr<Installed> installed = Install(options);
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(LinkTarget(prefix + "/current"), "1.0.0");
}

TEST_F(SignatureTest, AGoodSignatureDoesNotCoverChangedFiles) {
  const std::string good = MakeRelease(dir_, "1.0.0");
  MakeKey(dir_ + "/release");
  std::vector<Entry> entries = ReadEntries(good);
  Find(entries, "fcvm-1.0.0-linux-x86_64/bin/fcvm")->data += "rm -rf /\n";
  const std::string tarball = dir_ + "/changed.tar.gz";
  WriteEntries(entries, tarball);
  Sign(tarball, dir_ + "/release", tarball + ".sig");
  InstallOptions options = Options(tarball, dir_ + "/prefix");
  options.public_key = dir_ + "/release.pub";
  absl::StatusOr<Installed> installed = Install(options);
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(installed.status().message(),
            Refusal(tarball,
                    "bin/fcvm: sha256 mismatch (the tarball is damaged or "
                    "was changed)"));
}

TEST_F(SignatureTest, SaysWhatToInstallWithoutSignify) {
  const std::string tarball = MakeRelease(dir_, "1.0.0");
  InstallOptions options = Options(tarball, dir_ + "/prefix");
  options.public_key = dir_ + "/release.pub";
  const std::string path = std::getenv("PATH");
  // FindProgram looks in PATH, then in /usr/local/sbin, /usr/sbin, /sbin;
  // Debian puts signify-openbsd in /usr/bin.
  setenv("PATH", (dir_ + "/empty").c_str(), 1);
  absl::StatusOr<Installed> installed = Install(options);
  setenv("PATH", path.c_str(), 1);
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(installed.status().message(),
            Refusal(tarball,
                    "signature check needs signify-openbsd (Debian package "
                    "signify-openbsd)"));
  EXPECT_EQ(Names(dir_ + "/prefix"), (std::set<std::string>{".lock"}));
}

}  // namespace
}  // namespace fcvm::runner::setup
