// The base image as built by //images:base_<cpu>: e2fsck-clean; every entry
// of a sample of packages is in the image with the archive's type, mode
// (setuid included), owner, size and link target, read back through
// libext2fs; the fix-ups left what their packages' scripts would have; a
// rebuild with the same inputs, also in another environment, gives the same
// bytes; and the assembler refuses a wrong archive hash and a package whose
// scripts are not covered.
//   base_image_test <cpu> <image> <build_image> <definition> <lock>
//                   <debs_dir> <init> <agent>
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/assemble.h"
#include "rootfs/image/build_ext4.h"
#include "rootfs/image/definition.h"
#include "rootfs/image/unpack.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

std::string g_cpu, g_image, g_tool, g_definition, g_lock, g_debs, g_init,
    g_agent;

std::string TestDir() { return std::getenv("TEST_TMPDIR"); }

// Read-only access to an ext4 image through libext2fs.
class ImageReader {
 public:
  explicit ImageReader(const std::string& path) {
    errcode_t err = ext2fs_open(path.c_str(), 0, 0, 0, unix_io_manager, &fs_);
    EXPECT_EQ(err, 0) << "ext2fs_open " << path;
    if (err != 0) fs_ = nullptr;
  }
  ~ImageReader() {
    if (fs_ != nullptr) ext2fs_close_free(&fs_);
  }
  // The inode at `path` (symlinks followed in parents, not at the end).
  bool Stat(const std::string& path, ext2_ino_t* ino, ext2_inode* inode) {
    if (fs_ == nullptr) return false;
    if (ext2fs_namei(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), ino) != 0)
      return false;
    return ext2fs_read_inode(fs_, *ino, inode) == 0;
  }
  std::string LinkTarget(ext2_ino_t ino, const ext2_inode& inode) {
    char buf[4096] = {};
    if (ext2fs_is_fast_symlink(const_cast<ext2_inode*>(&inode)) ||
        (inode.i_flags & EXT4_INLINE_DATA_FL)) {
      return std::string(reinterpret_cast<const char*>(inode.i_block),
                         inode.i_size);
    }
    ext2_file_t file;
    if (ext2fs_file_open(fs_, ino, 0, &file) != 0) return "";
    unsigned int got = 0;
    ext2fs_file_read(file, buf, sizeof(buf) - 1, &got);
    ext2fs_file_close(file);
    return std::string(buf, got);
  }
  std::string Read(const std::string& path) {
    ext2_ino_t ino;
    ext2_inode inode;
    if (!Stat(path, &ino, &inode)) return "";
    ext2_file_t file;
    if (ext2fs_file_open(fs_, ino, 0, &file) != 0) return "";
    std::string data(EXT2_I_SIZE(&inode), '\0');
    unsigned int got = 0;
    ext2fs_file_read(file, data.data(), data.size(), &got);
    ext2fs_file_close(file);
    data.resize(got);
    return data;
  }

 private:
  ext2_filsys fs_ = nullptr;
};

Subprocess::Output RunOrFail(const std::vector<std::string>& argv) {
  SubprocessOptions options{.argv = argv};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Minutes(5));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  EXPECT_TRUE(out->exit.success())
      << argv[0] << " " << out->exit.ToString() << "\n"
      << out->stdout_data << out->stderr_data;
  return *out;
}

TEST(BaseImageTest, FsckClean) {
  Subprocess::Output out = RunOrFail({"e2fsck", "-fn", g_image});
  std::cerr << out.stdout_data;
}

TEST(BaseImageTest, SampleOfPackagesMatchesTheArchives) {
  ImageReader image(g_image);
  absl::StatusOr<ImageDefinition> definition =
      ReadImageDefinition(g_definition);
  ASSERT_TRUE(definition.ok()) << definition.status();
  const PathFilter filter(
      {definition->path_exclude().begin(), definition->path_exclude().end()},
      {definition->path_include().begin(), definition->path_include().end()});
  int checked = 0, setuid = 0, left_out = 0;
  for (const char* package :
       {"passwd", "podman", "crun", "conmon", "busybox-static", "libc6",
        "ca-certificates", "e2fsprogs", "iptables", "base-files"}) {
    const std::string deb = absl::StrCat(g_debs, "/", package, ".deb");
    absl::Status read =
        ReadDebData(deb, [&](const FileEntry& entry, absl::string_view data) {
          if (entry.path.empty()) return absl::OkStatus();
          ext2_ino_t ino;
          ext2_inode inode;
          const std::string where = absl::StrCat(package, ": /", entry.path);
          if (!filter.Keep(entry.path)) {
            // Left out (documentation), unless a kept path made it a parent.
            ++left_out;
            EXPECT_TRUE(entry.type == FileEntry::Type::kDirectory ||
                        !image.Stat(entry.path, &ino, &inode))
                << where << " should have been left out";
            return absl::OkStatus();
          }
          if (!image.Stat(entry.path, &ino, &inode)) {
            ADD_FAILURE() << where << " is not in the image";
            return absl::OkStatus();
          }
          ++checked;
          switch (entry.type) {
            case FileEntry::Type::kDirectory:
              // Directories shared by packages keep the first attributes;
              // merged /usr makes /bin a link to one.
              EXPECT_TRUE(LINUX_S_ISDIR(inode.i_mode) ||
                          LINUX_S_ISLNK(inode.i_mode))
                  << where;
              return absl::OkStatus();
            case FileEntry::Type::kSymlink:
              EXPECT_TRUE(LINUX_S_ISLNK(inode.i_mode)) << where;
              EXPECT_EQ(image.LinkTarget(ino, inode), entry.link_target)
                  << where;
              break;
            case FileEntry::Type::kFile:
            case FileEntry::Type::kHardlink:
              EXPECT_TRUE(LINUX_S_ISREG(inode.i_mode)) << where;
              if (entry.type == FileEntry::Type::kFile) {
                EXPECT_EQ(EXT2_I_SIZE(&inode), data.size()) << where;
              }
              setuid += (entry.mode & 04000) != 0;
              break;
            default:
              break;
          }
          EXPECT_EQ(inode.i_mode & 07777, entry.mode & 07777) << where;
          EXPECT_EQ(inode_uid(inode), entry.uid) << where;
          EXPECT_EQ(inode_gid(inode), entry.gid) << where;
          return absl::OkStatus();
        });
    ASSERT_TRUE(read.ok()) << read;
  }
  std::cerr << checked << " entries checked, " << setuid << " setuid, "
            << left_out << " left out\n";
  EXPECT_GT(left_out, 50);
  // Copyright files stay.
  ext2_ino_t ino;
  ext2_inode inode;
  EXPECT_TRUE(image.Stat("usr/share/doc/podman/copyright", &ino, &inode));
  EXPECT_GT(checked, 500);
  EXPECT_GE(setuid, 4);  // passwd's chfn, chsh, gpasswd, passwd.
}

TEST(BaseImageTest, FixupsDidWhatTheScriptsWould) {
  ImageReader image(g_image);
  EXPECT_THAT(image.Read("etc/passwd"), HasSubstr("root:x:0:0:root:/root:"));
  EXPECT_THAT(image.Read("etc/group"), HasSubstr("shadow:x:42:"));
  ext2_ino_t ino;
  ext2_inode inode;
  ASSERT_TRUE(image.Stat("etc/shadow", &ino, &inode));
  EXPECT_EQ(inode.i_mode & 07777, 0640);
  EXPECT_EQ(inode_gid(inode), 42u);
  // The CA bundle holds every certificate the package ships.
  const std::string bundle = image.Read("etc/ssl/certs/ca-certificates.crt");
  const std::string conf = image.Read("etc/ca-certificates.conf");
  const int certs = std::count(conf.begin(), conf.end(), '\n') - 1;
  EXPECT_GT(certs, 100);
  int in_bundle = 0;
  for (size_t at = 0; (at = bundle.find("-----BEGIN CERTIFICATE-----", at)) !=
                      std::string::npos;
       ++at) {
    ++in_bundle;
  }
  EXPECT_EQ(in_bundle, certs);
  // OpenSSL finds CAs by subject hash: one link per certificate.
  ASSERT_TRUE(image.Stat("etc/ssl/certs", &ino, &inode));
  const std::string first = conf.substr(conf.find('\n') + 1);
  const std::string name = first.substr(
      first.find('/') + 1, first.find(".crt") - first.find('/') - 1);
  ASSERT_TRUE(
      image.Stat(absl::StrCat("etc/ssl/certs/", name, ".pem"), &ino, &inode))
      << name;
  EXPECT_TRUE(LINUX_S_ISLNK(inode.i_mode));
  // dpkg knows every package; alternatives, base-files and merged /usr.
  const std::string status = image.Read("var/lib/dpkg/status");
  absl::StatusOr<std::string> lock_json = ReadFile(g_lock);
  ASSERT_TRUE(lock_json.ok());
  absl::StatusOr<Lockfile> lock = LockfileFromJson(*lock_json);
  ASSERT_TRUE(lock.ok());
  for (const LockedPackage& p : lock->packages()) {
    EXPECT_THAT(status,
                HasSubstr(absl::StrCat("Package: ", p.name(),
                                       "\nStatus: install ok installed")));
  }
  for (const auto& [path, target] :
       std::vector<std::pair<std::string, std::string>>{
           {"usr/sbin/iptables", "iptables-nft"},
           {"bin", "usr/bin"},
           {"var/run", "/run"},
           {"sbin/init", "fcvm-init"}}) {
    ASSERT_TRUE(image.Stat(path, &ino, &inode)) << path;
    EXPECT_EQ(image.LinkTarget(ino, inode), target) << path;
  }
  // The agent and the init, as built: executable, byte for byte.
  for (const auto& [path, source] :
       std::vector<std::pair<std::string, std::string>>{
           {"usr/sbin/fc-agent", g_agent}, {"sbin/fcvm-init", g_init}}) {
    ASSERT_TRUE(image.Stat(path, &ino, &inode)) << path;
    EXPECT_EQ(inode.i_mode, LINUX_S_IFREG | 0755) << path;
    absl::StatusOr<std::string> built = ReadFile(source);
    ASSERT_TRUE(built.ok()) << built.status();
    EXPECT_EQ(image.Read(path), *built) << path;
  }
  EXPECT_THAT(image.Read("etc/profile"), HasSubstr("PATH"));
  EXPECT_THAT(image.Read("etc/containers/storage.conf"),
              HasSubstr("graphroot = \"/var/lib/containers/storage\""));
  EXPECT_THAT(image.Read("usr/lib/os-release"), HasSubstr("bookworm"));
}

// An absolute form of a path relative to the test's working directory.
std::string Absolute(const std::string& path) {
  return path.empty() || path[0] == '/'
             ? path
             : absl::StrCat(std::filesystem::current_path().string(), "/",
                            path);
}

// The tool run twice more, by hand, on the same inputs: the same bytes as
// Bazel's build. The second run varies what the build must not depend on
// (as reprotest does): time zone, locale, umask, HOME, working directory,
// the inputs' paths, and the order the archives were written to their
// directory in.
TEST(BaseImageTest, RebuildsAreByteIdentical) {
  absl::StatusOr<std::string> built = Sha256File(g_image);
  ASSERT_TRUE(built.ok()) << built.status();
  const std::string elsewhere = TestDir() + "/elsewhere";
  const std::string debs = elsewhere + "/debs";
  std::filesystem::create_directories(debs);
  std::filesystem::create_directories(elsewhere + "/cwd");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(g_debs)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.rbegin(), names.rend());
  for (const std::string& name : names) {
    std::filesystem::copy_file(
        absl::StrCat(g_debs, "/", name), absl::StrCat(debs, "/", name),
        std::filesystem::copy_options::overwrite_existing);
  }
  for (int i = 0; i < 2; ++i) {
    const bool vary = i == 1;
    const std::string out = absl::StrCat(TestDir(), "/rebuild-", i, ".ext4");
    const auto path = [&](const std::string& p) {
      return vary ? Absolute(p) : p;
    };
    SubprocessOptions options{
        .argv = {path(g_tool), "--definition=" + path(g_definition),
                 "--lock=" + path(g_lock),
                 "--debs_dir=" + (vary ? debs : g_debs),
                 // As images/BUILD.bazel lists them.
                 "--extra=/usr/sbin/fc-agent=" + path(g_agent) +
                     ":0755,/sbin/fcvm-init=" + path(g_init) + ":0755",
                 "--output=" + out}};
    if (vary) {
      const char* search_path = std::getenv("PATH");
      options.env = std::vector<std::string>{
          absl::StrCat("PATH=", search_path != nullptr ? search_path : ""),
          "HOME=" + elsewhere, "TZ=FCVM-14", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"};
      options.working_dir = elsewhere + "/cwd";
    }
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    // umask is the process's; this test runs nothing else meanwhile.
    const mode_t saved_umask = vary ? umask(077) : 0;
    absl::StatusOr<Subprocess::Output> run =
        RunCommand(options, absl::Minutes(5));
    if (vary) umask(saved_umask);
    ASSERT_TRUE(run.ok()) << run.status();
    absl::StatusOr<std::string> again = Sha256File(out);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *built) << "rebuild " << i << " differs"
                              << (vary ? " (in another environment)" : "");
  }
  std::cerr << g_cpu << " base image sha256 " << *built << "\n";
}

// The inputs Bazel built the image from.
[[nodiscard]] absl::StatusOr<AssembleOptions> RealOptions() {
  AssembleOptions options;
  ASSIGN_OR_RETURN(options.definition, ReadImageDefinition(g_definition));
  options.definition_dir = g_definition.substr(0, g_definition.rfind('/'));
  ASSIGN_OR_RETURN(std::string json, ReadFile(g_lock));
  ASSIGN_OR_RETURN(options.lock, LockfileFromJson(json));
  options.debs_dir = g_debs;
  options.output = TestDir() + "/refused.ext4";
  return options;
}

TEST(BaseImageTest, WrongArchiveHashIsRefused) {
  absl::StatusOr<AssembleOptions> inputs = RealOptions();
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  AssembleOptions& options = *inputs;
  LockedPackage* podman = nullptr;
  for (LockedPackage& p : *options.lock.mutable_packages()) {
    if (p.name() == "podman") podman = &p;
  }
  ASSERT_NE(podman, nullptr);
  const std::string real = podman->sha256();
  podman->set_sha256(std::string(64, '0'));
  absl::StatusOr<AssembleReport> report = BuildExt4Image(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(report.status().message(), HasSubstr("package podman"));
  EXPECT_THAT(report.status().message(), HasSubstr(real));
  EXPECT_THAT(report.status().message(), HasSubstr(std::string(64, '0')));
}

TEST(BaseImageTest, UncoveredMaintainerScriptsFailTheBuild) {
  absl::StatusOr<AssembleOptions> inputs = RealOptions();
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  AssembleOptions& options = *inputs;
  // Drop the entry that covers podman (and the others it names).
  auto* entries = options.definition.mutable_maintainer_scripts();
  for (int i = 0; i < entries->size(); ++i) {
    for (const std::string& p : entries->Get(i).packages()) {
      if (p == "podman") {
        entries->DeleteSubrange(i, 1);
        break;
      }
    }
  }
  absl::StatusOr<AssembleReport> report = BuildExt4Image(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(),
              HasSubstr("podman (postinst, postrm, prerm)"));
}

TEST(BaseImageTest, UnknownFixupIsNamed) {
  absl::StatusOr<AssembleOptions> inputs = RealOptions();
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  AssembleOptions& options = *inputs;
  options.definition.mutable_maintainer_scripts(0)->set_fixup(
      "run-the-scripts");
  absl::StatusOr<AssembleReport> report = BuildExt4Image(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(),
              HasSubstr("unknown fix-up 'run-the-scripts'"));
}

}  // namespace
}  // namespace fcvm::rootfs

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  if (argc != 9) {
    std::cerr << "usage: " << argv[0]
              << " CPU IMAGE BUILD_IMAGE DEFINITION LOCK DEBS_DIR INIT AGENT\n";
    return 2;
  }
  using namespace fcvm::rootfs;
  g_cpu = argv[1];
  g_image = argv[2];
  g_tool = argv[3];
  g_definition = argv[4];
  g_lock = argv[5];
  g_debs = argv[6];
  g_init = argv[7];
  g_agent = argv[8];
  return RUN_ALL_TESTS();
}
