#ifndef FCVM_ROOTFS_LOCK_DEBIAN_VERSION_H_
#define FCVM_ROOTFS_LOCK_DEBIAN_VERSION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::rootfs {

// A Debian package version, "[epoch:]upstream[-revision]" (Debian Policy
// 5.6.12), split into its parts.
struct DebianVersion {
  unsigned long epoch = 0;
  std::string upstream;
  std::string revision;  // Empty when the version has no '-'.

  std::string ToString() const;
};

// Parses `text`; fails (naming it) on an empty upstream part, a non-numeric
// epoch or characters the policy does not allow.
[[nodiscard]] absl::StatusOr<DebianVersion> ParseDebianVersion(
    absl::string_view text);

// <0, 0 or >0 as a sorts before, equal to or after b, in dpkg's order
// ('~' before everything, even the end of the string; digits compared as
// numbers; letters before other characters).
int CompareDebianVersions(const DebianVersion& a, const DebianVersion& b);

// A relation from a dependency field: "<<", "<=", "=", ">=", ">>".
enum class VersionRelation {
  kLess,
  kLessEqual,
  kEqual,
  kGreaterEqual,
  kGreater
};

[[nodiscard]] absl::StatusOr<VersionRelation> ParseVersionRelation(
    absl::string_view text);

// Whether `version` satisfies "<relation> <bound>".
bool Satisfies(const DebianVersion& version, VersionRelation relation,
               const DebianVersion& bound);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_DEBIAN_VERSION_H_
