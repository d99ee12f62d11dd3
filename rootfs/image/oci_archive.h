#ifndef FCVM_ROOTFS_IMAGE_OCI_ARCHIVE_H_
#define FCVM_ROOTFS_IMAGE_OCI_ARCHIVE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "rootfs/image/oci.pb.h"

namespace fcvm::rootfs {

struct OciArchiveOptions {
  std::string layer;         // An uncompressed layer tar (TarLayer).
  std::string architecture;  // OCI/Go names: "amd64", "arm64".
  oci::ContainerConfig config;
  // The image's name in index.json (org.opencontainers.image.ref.name),
  // e.g. "fcvm/nginx:latest".
  std::string ref_name;
  int64_t timestamp = 0;  // "created", and every time in the archive.
  std::string output;     // The OCI archive (a tar of an OCI layout).
};

struct OciArchiveReport {
  std::string manifest_digest;  // "sha256:..."
  uint64_t layer_size = 0;
};

// Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...)
// holding one layer as a tar archive, as `podman load` and `skopeo copy
// oci-archive:` read it. Deterministic: the same layer and config give the
// same bytes.
[[nodiscard]] absl::StatusOr<OciArchiveReport> WriteOciArchive(
    const OciArchiveOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_OCI_ARCHIVE_H_
