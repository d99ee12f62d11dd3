#ifndef FCVM_ROOTFS_IMAGE_DEFINITION_H_
#define FCVM_ROOTFS_IMAGE_DEFINITION_H_

#include <string>

#include "absl/status/statusor.h"
#include "rootfs/image/image.pb.h"

namespace fcvm::rootfs {

// The files an image's folder holds (images/<image>/): its definition,
// image.textproto, and one lockfile per architecture, <arch>.lock.

// Reads an image definition (text format); errors name the file.
[[nodiscard]] absl::StatusOr<ImageDefinition> ReadImageDefinition(
    const std::string& path);

// Lockfile <-> JSON (protobuf's JSON mapping, field names as in the schema;
// unknown fields rejected).
[[nodiscard]] absl::StatusOr<std::string> LockfileToJson(const Lockfile& lock);
[[nodiscard]] absl::StatusOr<Lockfile> LockfileFromJson(
    const std::string& json);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_DEFINITION_H_
