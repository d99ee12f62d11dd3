#ifndef FCVM_ROOTFS_IMAGE_ASSEMBLE_H_
#define FCVM_ROOTFS_IMAGE_ASSEMBLE_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/image.pb.h"
#include "rootfs/image/image_sink.h"

namespace fcvm::rootfs {

// A file from the build (e.g. the init binary) placed in the image.
struct ExtraFile {
  std::string path;    // Absolute, in the image.
  std::string source;  // On the host.
  uint32_t mode = 0755;
};

// The inputs of an image, whatever its format (build_ext4.h, build_oci.h).
struct AssembleOptions {
  ImageDefinition definition;
  std::string definition_dir;  // Where `files` sources are.
  Lockfile lock;
  std::string debs_dir;  // <name>.deb (or .apk) for every locked package.
  std::vector<ExtraFile> extra_files;
  std::string output;
};

// What a build reports.
struct AssembleReport {
  int packages = 0;
  int packages_with_scripts = 0;
  uint64_t size_bytes = 0;   // Apparent size.
  uint64_t blocks_used = 0;  // ext4: 4 KiB blocks in use by the filesystem.
  // ext4: the start of the volume UUID; OCI: the manifest digest.
  std::string uuid;
};

// One locked package whose archive matched the lock.
struct PreparedPackage {
  const LockedPackage* locked = nullptr;  // In AssembleOptions::lock.
  std::string archive;                    // <debs_dir>/<name>.deb or .apk.
  DebControl control;  // For an .apk, .PKGINFO and its install scripts.
};

// An image's checked inputs, before anything is written.
struct PreparedImage {
  std::vector<PreparedPackage> packages;  // In lock order.
  std::set<std::string> fixups;           // Named by the definition.
  int packages_with_scripts = 0;
  // sha256 (hex) over every input: the definition, each package's sha256,
  // each file and extra file. Image identities derive from it.
  std::string input_digest;
  // The packages' installed sizes plus the files, in bytes.
  uint64_t content_bytes = 0;
};

// The first step of every image build: checks the definition's fix-up
// names, every locked archive's sha256 against the lock, and that every
// package shipping maintainer scripts is covered by exactly one
// maintainer_scripts entry (fix-up or reason); reads the definition's files.
[[nodiscard]] absl::StatusOr<PreparedImage> PrepareImage(
    const AssembleOptions& options);

// The second: writes the image's entries into `sink` without running any
// maintainer script: the named early fix-ups, the packages' contents in
// lock order (through the definition's path filter), the definition's
// directories, files and symlinks and the extra files, then the remaining
// fix-ups. Leaves `sink` open; the caller finishes it.
[[nodiscard]] absl::Status FillImage(const AssembleOptions& options,
                                     const PreparedImage& prepared,
                                     ImageSink& sink);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_ASSEMBLE_H_
