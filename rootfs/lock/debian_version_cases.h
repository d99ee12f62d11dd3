#ifndef FCVM_ROOTFS_LOCK_DEBIAN_VERSION_CASES_H_
#define FCVM_ROOTFS_LOCK_DEBIAN_VERSION_CASES_H_

#include <string>

#include "absl/status/statusor.h"
#include "rootfs/lock/debian_version.h"

namespace fcvm::rootfs {

// The sign of CompareDebianVersions(a, b): -1, 0 or 1; a parse error if
// either fails to parse.
[[nodiscard]] inline absl::StatusOr<int> OrderOfVersions(const std::string& a,
                                                         const std::string& b) {
  absl::StatusOr<DebianVersion> va = ParseDebianVersion(a);
  if (!va.ok()) return va.status();
  absl::StatusOr<DebianVersion> vb = ParseDebianVersion(b);
  if (!vb.ok()) return vb.status();
  const int c = CompareDebianVersions(*va, *vb);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// A version pair and dpkg's verdict on it.
struct VersionOrderCase {
  const char* a;
  const char* b;
  int order;        // -1, 0 or 1: a sorts before, equal to or after b.
  const char* why;  // The rule it exercises.
};

// The ordering table: debian_version_test expects it of
// CompareDebianVersions, and debian_version_dpkg_test checks both it and
// CompareDebianVersions against `dpkg --compare-versions`.
inline constexpr VersionOrderCase kVersionOrderCases[] = {
    {"1.0", "1.0", 0, "equal"},
    {"1.0", "1.1", -1, "last part"},
    {"1.10", "1.9", 1, "numbers, not strings"},
    {"1.01", "1.1", 0, "leading zeros"},
    {"1.0~rc1", "1.0", -1, "~ before the end"},
    {"1.0~rc1", "1.0~rc2", -1, "after ~"},
    {"1.0~~", "1.0~", -1, "~~ before ~"},
    {"1.0a", "1.0+", -1, "letters before symbols"},
    {"1.0", "1.0a", -1, "the end before a letter"},
    {"1:0.1", "2.0", 1, "epoch wins"},
    {"1.0-1", "1.0-1+deb12u1", -1, "revision"},
    {"3.0.22-1~deb12u2", "3.0.22-1", -1, "~ in the revision"},
    {"1.0", "1.0-0", 0, "empty revision is 0"},
    {"0:1.0", "1.0", 0, "epoch 0 is no epoch"},
    {"1.0-1", "1.0.0-1", -1, "the end before a separator"},
    {"1.0+b1", "1.0.1", -1, "+ before ."},
    {"1.0~", "1.0", -1, "a lone ~"},
    {"1.0~a", "1.0~", 1, "~ then a letter after a lone ~"},
    {"1.0-1~bpo1", "1.0-1", -1, "backport"},
    {"2.1-1.47.0-2+b2", "2.1-1.47.0-2", 1, "hyphen in upstream, binNMU"},
    {"1.2.3", "1.2.3.0", -1, "a longer version"},
    {"1a", "1b", -1, "letters"},
    {"1A", "1a", -1, "upper case before lower"},
    {"1.0.", "1.0", 1, "a trailing separator"},
    {"10", "9", 1, "numbers"},
    {"1.000000000000000000002", "1.2", 0, "many leading zeros"},
    {"12345678901234567890", "12345678901234567889", 1, "beyond 64 bits"},
    {"1:1.2.13.dfsg-1", "1:1.2.13-1", 1, "dfsg suffix"},
    {"2.36-9+deb12u4", "2.36-9+deb12u10", -1, "security update numbers"},
};

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_DEBIAN_VERSION_CASES_H_
