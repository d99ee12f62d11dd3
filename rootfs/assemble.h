#ifndef FCVM_ROOTFS_ASSEMBLE_H_
#define FCVM_ROOTFS_ASSEMBLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rootfs/image.pb.h"

namespace fcvm::rootfs {

// A file from the build (e.g. the init binary) placed in the image.
struct ExtraFile {
  std::string path;    // Absolute, in the image.
  std::string source;  // On the host.
  uint32_t mode = 0755;
};

enum class ImageFormat {
  kExt4,  // A VM root filesystem.
  kOci,   // A container image: an OCI archive with one layer.
};

struct AssembleOptions {
  ImageFormat format = ImageFormat::kExt4;
  ImageDefinition definition;
  std::string definition_dir;  // Where `files` sources are.
  Lockfile lock;
  std::string debs_dir;  // <name>.deb for every locked package.
  std::vector<ExtraFile> extra_files;
  std::string output;
};

struct AssembleReport {
  int packages = 0;
  int packages_with_scripts = 0;
  uint64_t size_bytes = 0;   // Apparent size.
  uint64_t blocks_used = 0;  // 4 KiB blocks in use by the filesystem.
  std::string uuid;
};

// Builds the ext4 image (or OCI archive) of `definition` from the locked
// .debs, without
// running any maintainer script: checks every archive's sha256 against the
// lock, checks that every package shipping scripts is covered by a
// maintainer_scripts entry (fix-up or reason), unpacks the packages in lock
// order, adds the definition's directories, files and symlinks and the extra
// files, and applies the named fix-ups. The UUID and directory-hash seed are
// derived from the inputs (definition, lock, extra files), every timestamp is
// definition.source_date_epoch: equal inputs give byte-identical images.
absl::StatusOr<AssembleReport> AssembleImage(const AssembleOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_ASSEMBLE_H_
