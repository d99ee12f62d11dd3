#ifndef FCVM_ROOTFS_LOCK_DEBIAN_INDEX_H_
#define FCVM_ROOTFS_LOCK_DEBIAN_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rootfs/lock/debian_version.h"

namespace fcvm::rootfs {

// One package named in a dependency field: "libc6 (>= 2.34)", "perl:any".
struct Dependency {
  std::string name;
  // The ":any" / ":native" qualifier, without the colon; empty if none.
  std::string arch_qualifier;
  // Set when the field gives a version: "(>= 2.34)".
  std::optional<VersionRelation> relation;
  DebianVersion version;
};

// Alternatives, any one of which satisfies the dependency: "a | b".
using DependencyGroup = std::vector<Dependency>;

// One stanza of a Debian `Packages` index: what resolving and fetching need.
struct PackageRecord {
  std::string name;
  std::string version_text;
  DebianVersion version;
  std::string architecture;  // "amd64", "arm64", ... or "all".
  std::string multi_arch;    // "same", "foreign", "allowed" or empty.
  bool essential = false;
  std::string priority;
  std::string filename;  // Path relative to the mirror root: "pool/main/...".
  uint64_t size = 0;
  std::string sha256;
  std::vector<DependencyGroup> pre_depends;
  std::vector<DependencyGroup> depends;
  // Virtual packages it provides ("mail-transport-agent", "awk (= 1.0)").
  std::vector<Dependency> provides;
  // Not in the index: which mirror the caller read it from ("debian").
  std::string mirror;
};

// Parses a dependency field ("Depends", "Pre-Depends"): comma-separated
// groups of '|'-separated alternatives. Architecture restrictions ("[amd64]")
// and build profiles ("<!nocheck>") are rejected: binary packages have none.
[[nodiscard]] absl::StatusOr<std::vector<DependencyGroup>> ParseDependencyField(
    absl::string_view field);

// Parses a whole `Packages` file. `origin` (e.g. the index's URL path) names
// it in errors, with the line number of the offending stanza. A stanza
// without Package, Version, Architecture, Filename, Size or SHA256, or with
// an unparsable field, fails the whole index.
[[nodiscard]] absl::StatusOr<std::vector<PackageRecord>> ParsePackagesIndex(
    absl::string_view text, absl::string_view origin);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_DEBIAN_INDEX_H_
