#ifndef FCVM_ROOTFS_IMAGE_BUILD_OCI_H_
#define FCVM_ROOTFS_IMAGE_BUILD_OCI_H_

#include "absl/status/statusor.h"
#include "rootfs/image/assemble.h"

namespace fcvm::rootfs {

// Builds a container image: the tree of `options.definition` (see
// PrepareImage and FillImage) as one uncompressed tar layer in an OCI image
// layout archive at options.output, which `podman load` reads. Its name is
// definition.oci.ref_name (default "fcvm/<name>:latest"), its config
// definition.oci.config, its CPU the lock's architecture in OCI's spelling;
// every time is definition.source_date_epoch: equal inputs, equal bytes.
// Errors name the image and the output.
[[nodiscard]] absl::StatusOr<AssembleReport> BuildOciImage(
    const AssembleOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_BUILD_OCI_H_
