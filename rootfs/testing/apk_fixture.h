#ifndef FCVM_ROOTFS_TESTING_APK_FIXTURE_H_
#define FCVM_ROOTFS_TESTING_APK_FIXTURE_H_

// Builds Alpine-style archives for tests (no Alpine mirror is reachable
// here): tar segments without end-of-archive blocks, each in its own gzip
// member, concatenated, as abuild writes .apk files and APKINDEX.tar.gz.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fcvm::rootfs::testing {

struct TarItem {
  std::string path;
  std::string data;     // Regular file contents.
  std::string symlink;  // Non-empty: a symlink to this.
  bool directory = false;
  int mode = 0644;
  int uid = 0, gid = 0;
};

// A tar stream of `items` with the two end-of-archive blocks removed (as
// apk segments are), unless `terminate`.
[[nodiscard]] absl::StatusOr<std::string> TarSegment(
    const std::vector<TarItem>& items, bool terminate = false);

// One gzip member holding `data`.
[[nodiscard]] absl::StatusOr<std::string> GzipMember(const std::string& data);

// An .apk: signature segment, control segment (.PKGINFO + scripts), data
// segment (terminated), each gzipped. The data segment's sha256 is added to
// .PKGINFO as "datahash"; `checksum`, if given, receives the APKINDEX C:
// value of the control segment ("Q1" + base64 SHA-1).
[[nodiscard]] absl::StatusOr<std::string> MakeApk(
    const std::string& pkginfo, const std::vector<TarItem>& scripts,
    const std::vector<TarItem>& data, std::string* checksum = nullptr);

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_APK_FIXTURE_H_
