#ifndef FCVM_ROOTFS_LOCK_APK_INDEX_H_
#define FCVM_ROOTFS_LOCK_APK_INDEX_H_

// Alpine's package index (APKINDEX) and apk's version ordering, for locking
// Alpine images the way Debian ones are locked.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::rootfs {

// apk's version ordering ("1.2.3_rc1-r0" < "1.2.3-r0" < "1.2.3_p1-r0"):
// <0, 0, >0. Fails on what apk would call an invalid version.
[[nodiscard]] absl::StatusOr<int> CompareApkVersions(absl::string_view a,
                                                     absl::string_view b);

// One APKINDEX stanza.
struct ApkRecord {
  std::string name;      // P:
  std::string version;   // V:
  std::string arch;      // A:
  uint64_t size = 0;     // S: the .apk's size.
  std::string checksum;  // C: "Q1" + base64(SHA-1 of the control segment).
  std::vector<std::string> depends;   // D: "so:libc.musl-x86_64.so.1", "a>=1"
  std::vector<std::string> provides;  // p: "cmd:sh=1.36.1-r0", "so:libz.so.1=1"
  int provider_priority = 0;          // k:
  // The .apk's file name in its repository: "<name>-<version>.apk".
  std::string FileName() const { return name + "-" + version + ".apk"; }
};

// Parses the text of an APKINDEX (the file inside APKINDEX.tar.gz).
// `origin` names it in errors, with the stanza's line number.
[[nodiscard]] absl::StatusOr<std::vector<ApkRecord>> ParseApkIndex(
    absl::string_view text, absl::string_view origin);

// The dependency closure of `roots` in `index`, sorted by name, as apk
// would install it: a name is the newest package of that name satisfying
// every constraint seen, else the provider of that name (so:, cmd:, pc: or
// a virtual package) with the highest provider priority, then the lowest
// name. Conflicts ("!name") are checked after. Errors name the chain.
[[nodiscard]] absl::StatusOr<std::vector<ApkRecord>> ResolveApkClosure(
    const std::vector<ApkRecord>& index, const std::vector<std::string>& roots);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_APK_INDEX_H_
