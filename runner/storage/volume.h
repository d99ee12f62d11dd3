#ifndef FCVM_RUNNER_STORAGE_VOLUME_H_
#define FCVM_RUNNER_STORAGE_VOLUME_H_

// `-v HOST:GUEST[:ro]` as a drive the agent mounts for the container.
// Firecracker has no shared filesystem, so neither does fcvm: a disk image
// file or a block device is attached as it is (read-write unless :ro); a
// directory is copied into a new ext4 image in the VM's directory and
// attached read-only (the launch plan refuses a writable one, with the way
// out: what the container writes would silently be lost).

#include <string>

#include "absl/status/statusor.h"

namespace fcvm::runner {

// -v HOST:GUEST[:ro|rw].
struct VolumeFlag {
  std::string host_path;  // Absolute: a directory, a file or a block device.
  std::string guest_path;
  bool read_only = false;
};

// Copies the directory tree `dir` into a new ext4 image at `image`
// (mke2fs -d, with an inode for every entry), for a read-only volume. On
// error the image is removed; the error names the directory and says why.
[[nodiscard]] absl::Status MakeDirectoryImage(const std::string& dir,
                                              const std::string& image);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STORAGE_VOLUME_H_
