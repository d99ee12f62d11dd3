#include "runner/setup/install.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc 2.28+).
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/eintr.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "release/manifest.h"
#include "release/manifest.pb.h"

namespace fcvm::runner::setup {
namespace {

using Progress = std::function<void(const std::string&)>;

constexpr char kLockName[] = ".lock";
constexpr char kStagingPrefix[] = ".staging-";
constexpr char kCurrentTempPrefix[] = ".current-";
constexpr char kCurrentName[] = "current";
constexpr size_t kChunkBytes = 1 << 20;
// SHA256SUMS and MANIFEST.json are read into memory; a release's are a few
// KiB, so anything near this is not a release.
constexpr uint64_t kMaxDocumentBytes = 16 << 20;
constexpr absl::Duration kSignifyTimeout = absl::Minutes(1);
constexpr char kIncomplete[] = "(the tarball is damaged or incomplete)";

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

void Report(const Progress& progress, const std::string& line) {
  if (progress) progress(line);
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (absl::EndsWith(dir, "/")) return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string ArchiveMessage(archive* a) {
  const char* error = archive_error_string(a);
  return error != nullptr ? error : "libarchive error";
}

// A version as it names a directory of PREFIX: one path component that
// cannot be a dot entry (ours: .lock, .staging-*) or `current`.
bool IsVersionName(absl::string_view name) {
  if (name.empty() ||
      !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        !absl::StrContains("._+~-", c)) {
      return false;
    }
  }
  return name != kCurrentName;
}

// Creates `path` and its missing parents, each 0755 whatever the umask.
[[nodiscard]] absl::Status MakeDirs(const std::string& path) {
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string partial = path.substr(0, end);
    if (::mkdir(partial.c_str(), 0755) == 0) {
      if (::chmod(partial.c_str(), 0755) != 0) {
        return ErrnoStatus(absl::StrCat("chmod ", partial));
      }
    } else if (errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("mkdir ", partial));
    }
    if (end == std::string::npos) return absl::OkStatus();
  }
}

// Takes PREFIX/.lock (created 0644), blocking while another install or rm
// holds it: the lock makes its holder the one owner of PREFIX.
[[nodiscard]] absl::StatusOr<UniqueFd> LockPrefix(int prefix_fd,
                                                  const std::string& prefix,
                                                  const Progress& progress) {
  const std::string path = JoinPath(prefix, kLockName);
  bool created = true;
  int raw = RetryEintr([&] {
    return ::openat(prefix_fd, kLockName,
                    O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  });
  if (raw < 0 && errno == EEXIST) {
    created = false;
    raw = RetryEintr([&] {
      return ::openat(prefix_fd, kLockName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    });
  }
  if (raw < 0) return ErrnoStatus(absl::StrCat("open ", path));
  UniqueFd fd(raw);
  // The umask must not decide who may read the lock file.
  if (created && ::fchmod(fd.get(), 0644) != 0) {
    return ErrnoStatus(absl::StrCat("chmod ", path));
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoStatus(absl::StrCat("flock ", path));
    Report(progress, absl::StrCat("waiting for another install or rm (", path,
                                  " is locked)"));
    if (RetryEintr([&] { return ::flock(fd.get(), LOCK_EX); }) != 0) {
      return ErrnoStatus(absl::StrCat("flock ", path));
    }
  }
  return fd;
}

// Removes what an install or rm killed midway left behind. Only called with
// the lock held: then no staging directory belongs to a live process.
[[nodiscard]] absl::Status RemoveStale(const std::string& prefix,
                                       const Progress& progress) {
  std::vector<std::string> stale;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(prefix.c_str()),
                                            ::closedir);
    if (dir == nullptr) return ErrnoStatus(absl::StrCat("opendir ", prefix));
    while (const dirent* entry = ::readdir(dir.get())) {
      const absl::string_view name = entry->d_name;
      if (absl::StartsWith(name, kStagingPrefix) ||
          absl::StartsWith(name, kCurrentTempPrefix)) {
        stale.emplace_back(name);
      }
    }
  }
  for (const std::string& name : stale) {
    const std::string path = JoinPath(prefix, name);
    Report(progress,
           absl::StrCat("removing ", path,
                        " (left by an install or rm that was killed)"));
    RETURN_IF_ERROR(RemoveTree(path));
  }
  return absl::OkStatus();
}

// A fresh PREFIX/.staging-XXXXXX, removed with everything in it when the
// object goes: what an install unpacks, or what an rm or a replacement
// moves out of sight before deleting it.
class Staging {
 public:
  [[nodiscard]] static absl::StatusOr<Staging> Create(
      const std::string& prefix) {
    std::string path = JoinPath(prefix, absl::StrCat(kStagingPrefix, "XXXXXX"));
    if (::mkdtemp(path.data()) == nullptr) {
      return ErrnoStatus(absl::StrCat("mkdtemp ", path));
    }
    Staging staging(path);
    ASSIGN_OR_RETURN(staging.fd_, OpenFd(path, O_RDONLY | O_DIRECTORY));
    return staging;
  }

  Staging(Staging&& other) noexcept
      : path_(std::exchange(other.path_, "")), fd_(std::move(other.fd_)) {}
  Staging& operator=(Staging&&) = delete;
  ~Staging() {
    fd_.reset();
    // A directory left here (disk trouble) is removed by the next install.
    if (!path_.empty()) (void)RemoveTree(path_);
  }

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

  // Removes it now, saying whether that worked.
  [[nodiscard]] absl::Status Remove() {
    fd_.reset();
    if (path_.empty()) return absl::OkStatus();
    return RemoveTree(std::exchange(path_, ""));
  }

 private:
  explicit Staging(std::string path) : path_(std::move(path)) {}

  std::string path_;
  UniqueFd fd_;
};

// The version PREFIX/current points at ("" if none): the link is written
// as "VERSION", but one made by hand may say PREFIX/VERSION.
std::string CurrentVersion(int prefix_fd, const std::string& prefix) {
  char target[PATH_MAX];
  const ssize_t n =
      ::readlinkat(prefix_fd, kCurrentName, target, sizeof(target) - 1);
  if (n <= 0) return "";
  absl::string_view link(target, static_cast<size_t>(n));
  absl::ConsumePrefix(&link, JoinPath(prefix, ""));
  return std::string(link);
}

// Points PREFIX/current at `version` in one rename, so that it names the
// old version or the new one at every moment.
[[nodiscard]] absl::Status PointCurrent(int prefix_fd,
                                        const std::string& prefix,
                                        const std::string& version) {
  char target[PATH_MAX];
  const ssize_t n =
      ::readlinkat(prefix_fd, kCurrentName, target, sizeof(target) - 1);
  if (n >= 0 && absl::string_view(target, static_cast<size_t>(n)) == version) {
    return absl::OkStatus();
  }
  // Unique under the lock; a stale one is removed with the staging dirs.
  const std::string temp = absl::StrCat(kCurrentTempPrefix, ::getpid());
  const std::string current = JoinPath(prefix, kCurrentName);
  if (::unlinkat(prefix_fd, temp.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus(absl::StrCat("unlink ", JoinPath(prefix, temp)));
  }
  if (::symlinkat(version.c_str(), prefix_fd, temp.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("symlink ", JoinPath(prefix, temp)));
  }
  if (::renameat(prefix_fd, temp.c_str(), prefix_fd, kCurrentName) != 0) {
    absl::Status status = ErrnoStatus(
        absl::StrCat("rename ", JoinPath(prefix, temp), " to ", current));
    ::unlinkat(prefix_fd, temp.c_str(), 0);
    return status;
  }
  if (::fsync(prefix_fd) != 0)
    return ErrnoStatus(absl::StrCat("fsync ", prefix));
  return absl::OkStatus();
}

// The top directory of a release tarball, fcvm-VERSION-linux-ARCH.
struct Top {
  std::string name, version, arch;
};

[[nodiscard]] absl::StatusOr<Top> ParseTop(archive_entry* entry) {
  const char* raw = archive_entry_pathname(entry);
  const std::string given = raw != nullptr ? raw : "";
  auto refuse = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("not an fcvm release tarball: its first entry '", given,
                     "' is not the directory fcvm-VERSION-linux-ARCH/"));
  };
  if (archive_entry_filetype(entry) != AE_IFDIR ||
      archive_entry_hardlink(entry) != nullptr) {
    return refuse();
  }
  absl::string_view name = given;
  absl::ConsumeSuffix(&name, "/");
  if (!absl::ConsumePrefix(&name, "fcvm-")) return refuse();
  const size_t linux_at = name.rfind("-linux-");
  if (linux_at == absl::string_view::npos) return refuse();
  Top top;
  top.version = std::string(name.substr(0, linux_at));
  top.arch = std::string(name.substr(linux_at + 7));
  top.name = release::ReleaseName(top.version, top.arch);
  if (!IsVersionName(top.version) || top.arch.empty() ||
      !std::all_of(top.arch.begin(), top.arch.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
      })) {
    return refuse();
  }
  return top;
}

const char* TypeName(mode_t type) {
  switch (type) {
    case AE_IFLNK:
      return "a symbolic link";
    case AE_IFCHR:
      return "a character device";
    case AE_IFBLK:
      return "a block device";
    case AE_IFIFO:
      return "a fifo";
    case AE_IFSOCK:
      return "a socket";
    default:
      return "not a directory or regular file";
  }
}

// One unpacked file, as written (not as the archive's header claims).
struct UnpackedFile {
  uint64_t size = 0;
  mode_t mode = 0;
  std::string sha256;
};

struct Unpacked {
  std::map<std::string, UnpackedFile> files;  // By path under the top dir.
  std::vector<std::string> directories;       // Likewise, parents first.
  uint64_t bytes = 0;
};

// Writes the data of the current entry to a new file `path` under `top_fd`.
[[nodiscard]] absl::StatusOr<UnpackedFile> UnpackFile(archive* a, int top_fd,
                                                      const std::string& path,
                                                      mode_t mode,
                                                      std::string& buffer) {
  // O_EXCL|O_NOFOLLOW: a file only ever goes where nothing was.
  const int raw = RetryEintr([&] {
    return ::openat(top_fd, path.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  });
  if (raw < 0) return ErrnoStatus(absl::StrCat("create ", path));
  UniqueFd fd(raw);
  if (::fchmod(fd.get(), mode) != 0) {
    return ErrnoStatus(absl::StrCat("chmod ", path));
  }
  Sha256Stream sha256;
  UnpackedFile file;
  file.mode = mode;
  while (true) {
    const la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
    if (n < 0) {
      return absl::DataLossError(absl::StrCat(
          "reading ", path, ": ", ArchiveMessage(a), " ", kIncomplete));
    }
    if (n == 0) break;
    const absl::string_view data(buffer.data(), static_cast<size_t>(n));
    sha256.Update(data);
    RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
    file.size += static_cast<uint64_t>(n);
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus(absl::StrCat("fsync ", path));
  RETURN_IF_ERROR(fd.Close(path));
  file.sha256 = sha256.Finish();
  return file;
}

// Unpacks every entry after the top directory into `top_fd`, refusing
// anything a release does not hold.
[[nodiscard]] absl::StatusOr<Unpacked> UnpackEntries(archive* a, const Top& top,
                                                     int top_fd) {
  Unpacked out;
  std::set<std::string> seen;
  std::set<std::string> directories;
  const std::string under = absl::StrCat(top.name, "/");
  std::string buffer(kChunkBytes, '\0');
  while (true) {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    // A warning (an odd pax attribute) costs nothing: the data is checked
    // against SHA256SUMS anyway.
    if (rc < ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat(
          "reading the archive: ", ArchiveMessage(a), " ", kIncomplete));
    }
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) {
      return absl::InvalidArgumentError("an entry has no readable path");
    }
    const std::string given = raw;
    const mode_t type = archive_entry_filetype(entry);
    // A hard link says AE_IFREG; only its link target tells.
    if (archive_entry_hardlink(entry) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", given,
                       "' is a hard link (a release holds directories and "
                       "regular files only)"));
    }
    if (type != AE_IFDIR && type != AE_IFREG) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", given, "' is ", TypeName(type),
          " (a release holds directories and regular files only)"));
    }
    absl::string_view relative = given;
    if (type == AE_IFDIR) absl::ConsumeSuffix(&relative, "/");
    if (relative == top.name) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", given, "': the top directory appears twice"));
    }
    if (!absl::ConsumePrefix(&relative, under)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", given, "' is outside the top directory ", under));
    }
    const std::string path(relative);
    if (path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", given, "': the top directory appears twice"));
    }
    if (!release::IsCleanRelativePath(path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", given, "' is not a clean relative path under ", under));
    }
    if (!seen.insert(path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", given, "' appears twice"));
    }
    // Every parent is an entry of its own, before its children
    // (release/pack.h); so every parent is a directory this loop made.
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos &&
        directories.count(path.substr(0, slash)) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", given, "': its directory is not a directory entry before it"));
    }
    if (type == AE_IFDIR) {
      if (::mkdirat(top_fd, path.c_str(), 0755) != 0) {
        return ErrnoStatus(absl::StrCat("mkdir ", path));
      }
      if (::fchmodat(top_fd, path.c_str(), 0755, 0) != 0) {
        return ErrnoStatus(absl::StrCat("chmod ", path));
      }
      directories.insert(path);
      out.directories.push_back(path);
      continue;
    }
    // Only the executable bit survives: no setuid, setgid, sticky or
    // group/other write.
    const mode_t mode = (archive_entry_perm(entry) & 0111) != 0 ? 0755 : 0644;
    ASSIGN_OR_RETURN(UnpackedFile file,
                     UnpackFile(a, top_fd, path, mode, buffer));
    out.bytes += file.size;
    out.files.emplace(path, std::move(file));
  }
  return out;
}

// Makes the unpacked tree durable before it is renamed into place, so that
// a power loss cannot leave PREFIX/VERSION with missing or empty files.
[[nodiscard]] absl::Status SyncDirectories(const Unpacked& unpacked,
                                           int top_fd) {
  for (auto it = unpacked.directories.rbegin();
       it != unpacked.directories.rend(); ++it) {
    const int raw = RetryEintr([&] {
      return ::openat(top_fd, it->c_str(),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    });
    if (raw < 0) return ErrnoStatus(absl::StrCat("open ", *it));
    UniqueFd fd(raw);
    if (::fsync(fd.get()) != 0) return ErrnoStatus(absl::StrCat("fsync ", *it));
  }
  if (::fsync(top_fd) != 0) return ErrnoStatus("fsync the top directory");
  return absl::OkStatus();
}

// Reads one of the release's documents from the unpacked tree.
[[nodiscard]] absl::StatusOr<std::string> ReadDocument(
    const Unpacked& unpacked, const std::string& top_path,
    const std::string& path) {
  const auto it = unpacked.files.find(path);
  if (it == unpacked.files.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no ", path, " (not an fcvm release tarball)"));
  }
  if (it->second.size > kMaxDocumentBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is ", it->second.size, " bytes (not an fcvm release tarball)"));
  }
  return ReadFile(JoinPath(top_path, path));
}

[[nodiscard]] absl::Status CheckSignature(const std::string& public_key,
                                          const std::string& signature,
                                          const std::string& sums_path) {
  absl::StatusOr<std::string> signify = FindProgram("signify-openbsd");
  if (!signify.ok()) {
    return absl::FailedPreconditionError(
        "signature check needs signify-openbsd (Debian package "
        "signify-openbsd)");
  }
  SubprocessOptions options;
  options.argv = {*signify, "-V",      "-q", "-p",     public_key,
                  "-x",     signature, "-m", sums_path};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  ASSIGN_OR_RETURN(Subprocess child, Subprocess::Start(std::move(options)));
  ASSIGN_OR_RETURN(Subprocess::Output output,
                   child.Communicate("", kSignifyTimeout));
  if (!output.exit.success()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "signature ", signature, " does not verify with ", public_key,
        " (signify-openbsd ", output.exit.ToString(), ": ",
        absl::StripAsciiWhitespace(output.stderr_data), ")"));
  }
  return absl::OkStatus();
}

constexpr char kChanged[] = "(the tarball is damaged or was changed)";

// SHA256SUMS lists every unpacked file but itself, with its digest.
[[nodiscard]] absl::Status CheckSums(const Unpacked& unpacked,
                                     const release::Sums& sums) {
  for (const auto& [path, file] : unpacked.files) {
    if (path == release::kSumsPath) continue;
    const auto it = sums.find(path);
    if (it == sums.end()) {
      return absl::DataLossError(
          absl::StrCat(path, " is not listed in SHA256SUMS ", kChanged));
    }
    if (it->second != file.sha256) {
      return absl::DataLossError(
          absl::StrCat(path, ": sha256 mismatch ", kChanged));
    }
  }
  for (const auto& [path, sha256] : sums) {
    if (unpacked.files.count(path) == 0) {
      return absl::DataLossError(
          absl::StrCat("SHA256SUMS lists ", path,
                       ", which the tarball does not hold ", kChanged));
    }
  }
  return absl::OkStatus();
}

// The manifest describes this release and exactly the files unpacked.
[[nodiscard]] absl::Status CheckManifest(const release::ReleaseManifest& m,
                                         const Top& top,
                                         const Unpacked& unpacked) {
  const std::string what = release::kManifestPath;
  if (m.name() != top.name || m.version() != top.version ||
      m.arch() != top.arch) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is for ", m.name(), " (version ", m.version(),
                     ", ", m.arch(), ") but the top directory is ", top.name));
  }
  std::set<std::string> listed;
  for (const release::FileEntry& entry : m.files()) {
    const std::string& path = entry.path();
    if (!listed.insert(path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " lists ", path, " twice"));
    }
    const auto it = unpacked.files.find(path);
    if (it == unpacked.files.end() || path == release::kManifestPath ||
        path == release::kSumsPath) {
      return absl::DataLossError(
          absl::StrCat(what, " lists ", path,
                       ", which the tarball does not hold ", kChanged));
    }
    const UnpackedFile& file = it->second;
    const std::string mode = absl::StrFormat("%04o", file.mode);
    if (entry.size() != file.size || entry.mode() != mode ||
        entry.sha256() != file.sha256) {
      return absl::DataLossError(absl::StrCat(
          what, " says ", path, " is ", entry.size(), " bytes, mode ",
          entry.mode(), ", sha256 ", entry.sha256(), "; the tarball's is ",
          file.size, " bytes, mode ", mode, ", sha256 ", file.sha256, " ",
          kChanged));
    }
  }
  for (const auto& [path, file] : unpacked.files) {
    if (path != release::kManifestPath && path != release::kSumsPath &&
        listed.count(path) == 0) {
      return absl::DataLossError(
          absl::StrCat(path, " is not listed in ", what, " ", kChanged));
    }
  }
  // What fcvm runs with is there (ParseManifest checked the paths' form).
  std::vector<std::pair<std::string, std::string>> assets = {
      {"kernel", m.kernel()}, {"rootfs", m.rootfs()}};
  if (!m.kernel_config().empty()) {
    assets.emplace_back("kernel_config", m.kernel_config());
  }
  for (const release::ImageAssets& image : m.images()) {
    assets.emplace_back(absl::StrCat("image ", image.name()), image.oci());
    if (!image.rootfs().empty()) {
      assets.emplace_back(absl::StrCat("image ", image.name()), image.rootfs());
    }
  }
  for (const auto& [role, path] : assets) {
    if (unpacked.files.count(JoinPath(release::kAssetsDir, path)) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", role, " '", path, "' is not a file of the tarball"));
    }
  }
  return absl::OkStatus();
}

// Install() without the tarball named in front of its errors.
[[nodiscard]] absl::StatusOr<Installed> InstallRelease(
    const InstallOptions& options) {
  const Progress& progress = options.progress;
  if (options.host_arch.empty()) {
    return absl::InvalidArgumentError("the host's CPU (host_arch) is not set");
  }
  const std::string& prefix = options.prefix;
  RETURN_IF_ERROR(MakeDirs(prefix));
  ASSIGN_OR_RETURN(UniqueFd prefix_fd, OpenFd(prefix, O_RDONLY | O_DIRECTORY));
  ASSIGN_OR_RETURN(UniqueFd lock,
                   LockPrefix(prefix_fd.get(), prefix, progress));
  RETURN_IF_ERROR(RemoveStale(prefix, progress));

  ASSIGN_OR_RETURN(UniqueFd tarball_fd, OpenFd(options.tarball, O_RDONLY));
  ArchivePtr reader(archive_read_new());
  archive* a = reader.get();
  if (a == nullptr) return absl::ResourceExhaustedError("archive_read_new");
  archive_read_support_filter_gzip(a);
  // Fails harmlessly where libarchive was built without zstd.
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_fd(a, tarball_fd.get(), kChunkBytes) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a tar.gz or tar.zst archive: ", ArchiveMessage(a)));
  }
  archive_entry* first = nullptr;
  const int rc = archive_read_next_header(a, &first);
  if (rc == ARCHIVE_EOF) {
    return absl::InvalidArgumentError("an empty archive, not an fcvm release");
  }
  if (rc < ARCHIVE_WARN) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a tar.gz or tar.zst archive: ", ArchiveMessage(a)));
  }
  ASSIGN_OR_RETURN(const Top top, ParseTop(first));
  // Before anything is written: a release for another CPU cannot run here.
  if (top.arch != options.host_arch) {
    return absl::FailedPreconditionError(absl::StrCat(
        top.name, " is for ", top.arch, "; this host is ", options.host_arch));
  }

  // Declared after `lock`, so it is removed while the lock is still held.
  ASSIGN_OR_RETURN(Staging staging, Staging::Create(prefix));
  const std::string top_path = JoinPath(staging.path(), top.name);
  Report(progress, absl::StrCat("unpacking ", top.name, " into ", top_path));
  if (::mkdirat(staging.fd(), top.name.c_str(), 0755) != 0 ||
      ::fchmodat(staging.fd(), top.name.c_str(), 0755, 0) != 0) {
    return ErrnoStatus(absl::StrCat("mkdir ", top_path));
  }
  ASSIGN_OR_RETURN(UniqueFd top_fd,
                   OpenFd(top_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  ASSIGN_OR_RETURN(const Unpacked unpacked,
                   UnpackEntries(a, top, top_fd.get()));
  reader.reset();
  tarball_fd.reset();
  RETURN_IF_ERROR(SyncDirectories(unpacked, top_fd.get()));
  top_fd.reset();

  // Verify: the signature vouches for SHA256SUMS, which vouches for every
  // file, MANIFEST.json included.
  ASSIGN_OR_RETURN(const std::string sums_text,
                   ReadDocument(unpacked, top_path, release::kSumsPath));
  if (!options.public_key.empty()) {
    const std::string signature = options.signature.empty()
                                      ? absl::StrCat(options.tarball, ".sig")
                                      : options.signature;
    RETURN_IF_ERROR(CheckSignature(options.public_key, signature,
                                   JoinPath(top_path, release::kSumsPath)));
    Report(progress, absl::StrCat("signature ", signature, " verifies with ",
                                  options.public_key));
  }
  ASSIGN_OR_RETURN(const release::Sums sums,
                   release::ParseSums(sums_text, release::kSumsPath));
  RETURN_IF_ERROR(CheckSums(unpacked, sums));
  ASSIGN_OR_RETURN(const std::string json,
                   ReadDocument(unpacked, top_path, release::kManifestPath));
  ASSIGN_OR_RETURN(const release::ReleaseManifest manifest,
                   release::ParseManifest(json, release::kManifestPath));
  RETURN_IF_ERROR(CheckManifest(manifest, top, unpacked));
  Report(progress, absl::StrCat("checked ", unpacked.files.size(),
                                " files against SHA256SUMS and ",
                                release::kManifestPath));

  Installed installed;
  installed.version = top.version;
  installed.arch = top.arch;
  installed.commit = manifest.commit();
  installed.dir = JoinPath(prefix, top.version);
  installed.bytes = unpacked.bytes;
  struct stat st;
  if (::fstatat(prefix_fd.get(), top.version.c_str(), &st,
                AT_SYMLINK_NOFOLLOW) == 0) {
    absl::StatusOr<std::string> old_sums =
        ReadFile(JoinPath(installed.dir, release::kSumsPath));
    if (S_ISDIR(st.st_mode) && old_sums.ok() && *old_sums == sums_text) {
      installed.already = true;
    } else {
      if (options.users) {
        ASSIGN_OR_RETURN(const std::vector<std::string> in_use,
                         Annotate(options.users(installed.dir),
                                  "finding what uses the installed build"));
        if (!in_use.empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat(installed.dir, " holds a different build of ",
                           top.version, " and is in use by ",
                           absl::StrJoin(in_use, ", "), "; stop them first"));
        }
      }
      // One step: PREFIX/VERSION is the old tree or the new one, never
      // missing; the old one lands in staging and goes with it.
      if (::renameat2(staging.fd(), top.name.c_str(), prefix_fd.get(),
                      top.version.c_str(), RENAME_EXCHANGE) != 0) {
        return ErrnoStatus(absl::StrCat("replacing ", installed.dir,
                                        ": renameat2(RENAME_EXCHANGE) with ",
                                        top_path));
      }
      Report(progress, absl::StrCat("replaced a different build of ",
                                    top.version, " in ", installed.dir));
    }
  } else if (errno != ENOENT) {
    return ErrnoStatus(absl::StrCat("stat ", installed.dir));
  } else if (::renameat(staging.fd(), top.name.c_str(), prefix_fd.get(),
                        top.version.c_str()) != 0) {
    return ErrnoStatus(
        absl::StrCat("rename ", top_path, " to ", installed.dir));
  }
  if (::fsync(prefix_fd.get()) != 0) {
    return ErrnoStatus(absl::StrCat("fsync ", prefix));
  }
  RETURN_IF_ERROR(PointCurrent(prefix_fd.get(), prefix, top.version));
  return installed;
}

[[nodiscard]] absl::Status Remove(const std::string& prefix,
                                  const std::string& version, bool force,
                                  const UsersOf& users) {
  if (!IsVersionName(version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", version, "' is not a version"));
  }
  const std::string dir = JoinPath(prefix, version);
  absl::StatusOr<UniqueFd> prefix_fd = OpenFd(prefix, O_RDONLY | O_DIRECTORY);
  if (!prefix_fd.ok() && absl::IsNotFound(prefix_fd.status())) {
    return absl::NotFoundError(
        absl::StrCat(version, " is not installed (no ", prefix, ")"));
  }
  RETURN_IF_ERROR(prefix_fd.status());
  ASSIGN_OR_RETURN(UniqueFd lock, LockPrefix(prefix_fd->get(), prefix, {}));
  RETURN_IF_ERROR(RemoveStale(prefix, {}));

  struct stat st;
  if (::fstatat(prefix_fd->get(), version.c_str(), &st, AT_SYMLINK_NOFOLLOW) !=
          0 ||
      !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat(version, " is not installed (no directory ", dir, ")"));
  }
  if (users) {
    ASSIGN_OR_RETURN(const std::vector<std::string> in_use,
                     Annotate(users(dir), "finding what uses it"));
    if (!in_use.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " is in use by ", absl::StrJoin(in_use, ", ")));
    }
  }
  if (CurrentVersion(prefix_fd->get(), prefix) == version) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat(
          version, " is the current version (", JoinPath(prefix, kCurrentName),
          " points at it); install another version first, or force"));
    }
    // First, so that `current` never names a missing directory.
    if (::unlinkat(prefix_fd->get(), kCurrentName, 0) != 0) {
      return ErrnoStatus(
          absl::StrCat("unlink ", JoinPath(prefix, kCurrentName)));
    }
  }
  // Out of sight in one rename; if the deletion is cut short, the next
  // install or rm finishes it.
  ASSIGN_OR_RETURN(Staging staging, Staging::Create(prefix));
  if (::renameat(prefix_fd->get(), version.c_str(), staging.fd(),
                 version.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", dir, " to ", staging.path()));
  }
  if (::fsync(prefix_fd->get()) != 0) {
    return ErrnoStatus(absl::StrCat("fsync ", prefix));
  }
  return Annotate(staging.Remove(),
                  "the version is gone; the next install removes the rest");
}

// The sum of the sizes of the regular files under `dir` (best effort: a
// file that vanishes meanwhile counts nothing).
uint64_t TreeBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  std::filesystem::recursive_directory_iterator it(dir, error), end;
  for (; !error && it != end; it.increment(error)) {
    std::error_code stat_error;
    if (it->symlink_status(stat_error).type() ==
        std::filesystem::file_type::regular) {
      const uintmax_t size = it->file_size(stat_error);
      if (!stat_error) bytes += size;
    }
  }
  return bytes;
}

}  // namespace

[[nodiscard]] absl::StatusOr<Installed> Install(const InstallOptions& options) {
  return Annotate(InstallRelease(options),
                  absl::StrCat("installing ", options.tarball));
}

[[nodiscard]] absl::StatusOr<std::vector<InstalledVersion>> ListInstalled(
    const std::string& prefix) {
  std::vector<InstalledVersion> versions;
  absl::StatusOr<UniqueFd> prefix_fd = OpenFd(prefix, O_RDONLY | O_DIRECTORY);
  if (!prefix_fd.ok() && absl::IsNotFound(prefix_fd.status())) {
    return versions;  // Nothing was ever installed here.
  }
  RETURN_IF_ERROR(prefix_fd.status());
  const std::string current = CurrentVersion(prefix_fd->get(), prefix);
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(prefix.c_str()),
                                            ::closedir);
    if (dir == nullptr) return ErrnoStatus(absl::StrCat("opendir ", prefix));
    while (const dirent* entry = ::readdir(dir.get())) {
      if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
    }
  }
  for (const std::string& name : names) {
    struct stat st;
    // Not `current`, nor anything else that is not a directory itself.
    if (::fstatat(prefix_fd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) !=
            0 ||
        !S_ISDIR(st.st_mode)) {
      continue;
    }
    InstalledVersion version;
    version.dir = JoinPath(prefix, name);
    const std::string manifest_path =
        JoinPath(version.dir, release::kManifestPath);
    if (::fstatat(prefix_fd->get(),
                  JoinPath(name, release::kManifestPath).c_str(), &st,
                  AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    version.current = name == current;
    version.bytes = TreeBytes(version.dir);
    absl::StatusOr<release::ReleaseManifest> manifest =
        absl::InvalidArgumentError("unread");
    absl::StatusOr<std::string> json = ReadFile(manifest_path);
    if (json.ok()) {
      manifest = release::ParseManifest(*json, manifest_path);
    } else {
      manifest = json.status();
    }
    if (!manifest.ok()) {
      version.version = name;
      version.problem = std::string(manifest.status().message());
    } else {
      version.version = manifest->version();
      version.arch = manifest->arch();
      version.commit = manifest->commit();
      if (manifest->version() != name) {
        version.problem =
            absl::StrCat(manifest_path, " says version ", manifest->version());
      }
    }
    versions.push_back(std::move(version));
  }
  std::sort(versions.begin(), versions.end(),
            [](const InstalledVersion& a, const InstalledVersion& b) {
              return std::tie(a.version, a.dir) < std::tie(b.version, b.dir);
            });
  return versions;
}

[[nodiscard]] absl::Status RemoveInstalled(const std::string& prefix,
                                           const std::string& version,
                                           bool force, const UsersOf& users) {
  return Annotate(Remove(prefix, version, force, users),
                  absl::StrCat("removing ", version, " from ", prefix));
}

}  // namespace fcvm::runner::setup
