#ifndef FCVM_ROOTFS_INIT_DISK_H_
#define FCVM_ROOTFS_INIT_DISK_H_

#include "absl/status/statusor.h"

namespace fcvm::init {

enum class DiskContent {
  kBlank,  // Only zeros at the start: a fresh sparse disk, safe to format.
  kExt,    // An ext2/3/4 superblock.
  kOther,  // Something else: never formatted over.
};

// Looks at the start of the block device or file open as `fd`.
[[nodiscard]] absl::StatusOr<DiskContent> ProbeDisk(int fd);

}  // namespace fcvm::init

#endif  // FCVM_ROOTFS_INIT_DISK_H_
