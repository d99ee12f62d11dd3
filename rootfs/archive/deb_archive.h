#ifndef FCVM_ROOTFS_ARCHIVE_DEB_ARCHIVE_H_
#define FCVM_ROOTFS_ARCHIVE_DEB_ARCHIVE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct archive;

namespace fcvm::rootfs {

// One entry of a package's file tree, as the archive states it.
struct FileEntry {
  enum class Type {
    kFile,
    kDirectory,
    kSymlink,
    kHardlink,
    kCharDevice,
    kBlockDevice,
    kFifo
  };
  Type type = Type::kFile;
  // Normalized, relative to the image root, no leading "./" or "/":
  // "usr/bin/podman". The root itself is "".
  std::string path;
  mode_t mode = 0;  // Permission bits incl. setuid/setgid/sticky.
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string uname;  // Owner names, when the archive has them.
  std::string gname;
  int64_t mtime = 0;
  // Symlink: the target as written (may be absolute). Hardlink: the
  // normalized path of the entry it links to.
  std::string link_target;
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
  // Extended attributes, e.g. "security.capability" -> raw bytes.
  std::map<std::string, std::string> xattrs;
};

// Normalizes an archive path ("./usr//bin/../bin/x" -> "usr/bin/x"); fails
// if it climbs above the root ("../etc/passwd", "a/../../b"). An absolute
// path is taken as relative to the image root.
[[nodiscard]] absl::StatusOr<std::string> NormalizeEntryPath(
    absl::string_view path);

// The control information of a .deb.
struct DebControl {
  std::string control;  // The DEBIAN/control file.
  // Maintainer scripts present: "preinst", "postinst", "prerm", "postrm",
  // "config", "triggers" (sorted).
  std::vector<std::string> scripts;
};

[[nodiscard]] absl::StatusOr<DebControl> ReadDebControl(
    const std::string& deb_path);

// Calls `visit` for every entry of the .deb's data.tar.* in archive order,
// with the contents of regular files. Entries that would escape the image
// root (path or hard-link target) are refused, naming the package file.
[[nodiscard]] absl::Status ReadDebData(
    const std::string& deb_path,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit);

// Reads every remaining entry of the open tar reader `a` as a FileEntry
// (paths normalized, escapes refused, contents of regular files); `what`
// names the archive in errors. Shared by the .deb and .apk readers.
[[nodiscard]] absl::Status VisitTarEntries(
    ::archive* a, const std::string& what,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_ARCHIVE_DEB_ARCHIVE_H_
