#ifndef FCVM_RUNNER_STORAGE_DISK_H_
#define FCVM_RUNNER_STORAGE_DISK_H_

// The per-VM writable disk. Blank by default: a sparse file that takes no
// space until the guest writes (fcvm-init formats it on first boot). From a
// template (e.g. a pre-formatted disk): a reflink where the filesystem
// shares extents (btrfs, XFS), else a copy of the template's data extents
// only, holes kept.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fcvm::runner {

struct DiskReport {
  std::string method;  // "sparse", "reflink" or "sparse copy".
  absl::Duration took;
};

// Creates `path` (never over an existing file) of `size_bytes` (at least
// the template's size). On error nothing is left behind.
[[nodiscard]] absl::StatusOr<DiskReport> CreateWritableDisk(
    const std::string& path, uint64_t size_bytes,
    const std::string& template_path = "");

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STORAGE_DISK_H_
