#ifndef FCVM_ROOTFS_ARCHIVE_APK_ARCHIVE_H_
#define FCVM_ROOTFS_ARCHIVE_APK_ARCHIVE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rootfs/archive/deb_archive.h"

namespace fcvm::rootfs {

// An Alpine .apk: concatenated gzip members holding one tar stream in three
// segments, the signature (.SIGN.*), the control segment (.PKGINFO and the
// install scripts) and the data.
struct ApkControl {
  std::string pkginfo;               // The .PKGINFO file.
  std::vector<std::string> scripts;  // ".pre-install", ".trigger", ... sorted.
};

[[nodiscard]] absl::StatusOr<ApkControl> ReadApkControl(
    const std::string& apk_path);

// Calls `visit` for every data entry in archive order (control entries
// skipped), with regular files' contents. Paths that escape the image root
// are refused; a truncated archive fails naming the file.
[[nodiscard]] absl::Status ReadApkData(
    const std::string& apk_path,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit);

// The APKINDEX text out of an APKINDEX.tar.gz (its gzip members hold the
// signature, then the index).
[[nodiscard]] absl::StatusOr<std::string> ReadApkIndexArchive(
    const std::string& path);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_ARCHIVE_APK_ARCHIVE_H_
