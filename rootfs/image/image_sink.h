#ifndef FCVM_ROOTFS_IMAGE_IMAGE_SINK_H_
#define FCVM_ROOTFS_IMAGE_IMAGE_SINK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rootfs/archive/deb_archive.h"

namespace fcvm::rootfs {

// Where unpacked entries go: an ext4 image (Ext4Image) or a container image
// layer (TarLayer). Both keep dpkg's rules: a directory seen again keeps its
// first attributes, any other path seen again is an error naming it.
class ImageSink {
 public:
  virtual ~ImageSink() = default;
  // Adds one entry; `data` is the content of a regular file.
  [[nodiscard]] virtual absl::Status Add(const FileEntry& entry,
                                         absl::string_view data) = 0;
  // Completes the output. Nothing may be added after.
  [[nodiscard]] virtual absl::Status Finish() = 0;
};

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_IMAGE_SINK_H_
