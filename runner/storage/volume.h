#ifndef FCVM_RUNNER_STORAGE_VOLUME_H_
#define FCVM_RUNNER_STORAGE_VOLUME_H_

// `-v HOST:GUEST[:ro]` as a drive the agent mounts for the container.
// Firecracker has no shared filesystem, so neither does fcvm: a disk image
// file or a block device is attached as it is (read-write unless :ro); a
// directory is copied into a new ext4 image in the VM's directory and
// attached read-only (a writable directory would silently lose what the
// container writes, so it is refused, with the way out).

#include <string>

#include "absl/status/statusor.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {

struct VolumeDrive {
  std::string path;  // The file the VMM attaches.
  bool read_only = false;
  std::string how;  // "disk image", "block device", "copy of a directory".
};

// What PrepareVolume would refuse, checked before anything is created.
absl::Status CheckVolume(const VolumeFlag& volume);

// `vm_dir` receives the images made from directories (volume-<index>.ext4).
absl::StatusOr<VolumeDrive> PrepareVolume(const VolumeFlag& volume, int index,
                                          const std::string& vm_dir);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STORAGE_VOLUME_H_
