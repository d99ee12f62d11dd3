#ifndef FCVM_ROOTFS_IMAGE_BUILD_EXT4_H_
#define FCVM_ROOTFS_IMAGE_BUILD_EXT4_H_

#include "absl/status/statusor.h"
#include "rootfs/image/assemble.h"

namespace fcvm::rootfs {

// Builds a VM root filesystem: the ext4 image of `options.definition` from
// the locked archives, at options.output (see PrepareImage and FillImage).
// The size is definition.size_mib, else the content plus headroom; the
// volume UUID and directory-hash seed are derived from the inputs and every
// timestamp is definition.source_date_epoch: equal inputs give
// byte-identical images. Errors name the image and the output.
[[nodiscard]] absl::StatusOr<AssembleReport> BuildExt4Image(
    const AssembleOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_BUILD_EXT4_H_
