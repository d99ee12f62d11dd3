#ifndef FCVM_ROOTFS_LOCK_MIRRORS_H_
#define FCVM_ROOTFS_LOCK_MIRRORS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::rootfs {

// Where to look for apt's source lists (tests point these elsewhere).
struct AptSourcePaths {
  std::string sources_list = "/etc/apt/sources.list";
  std::string sources_dir = "/etc/apt/sources.list.d";
};

// Every repository URI named by the apt configuration: deb822 "URIs:" lines
// in *.sources and the URI of one-line "deb ..." entries in sources.list and
// *.list, in file order (files sorted by name). Missing files are skipped.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> AptSourceUris(
    const AptSourcePaths& paths);

// The root URL of the mirror named `mirror` (e.g. "debian"), without a
// trailing slash: the environment variable FCVM_MIRROR_<MIRROR> (upper case,
// '-' as '_') if set, else the first apt source URI whose path ends in
// "/<mirror>". The repository never names a host; this is how one is found.
[[nodiscard]] absl::StatusOr<std::string> FindMirrorRoot(
    absl::string_view mirror, const AptSourcePaths& paths = {});

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_MIRRORS_H_
