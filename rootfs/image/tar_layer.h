#ifndef FCVM_ROOTFS_IMAGE_TAR_LAYER_H_
#define FCVM_ROOTFS_IMAGE_TAR_LAYER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "rootfs/image/image_sink.h"

struct archive;

namespace fcvm::rootfs {

// A container image layer: an uncompressed POSIX (pax) tar written with
// libarchive, entries in the order added, owners numeric, xattrs as
// SCHILY.xattr records, every time `timestamp`: equal inputs, equal bytes.
// Uncompressed on purpose: the digest then depends on nothing but the
// entries (no compressor version), and the layer goes to the VM on a local
// disk, not over a network.
//
// Paths are never written through a symlink: an entry whose parent is a
// symlink the layer holds is refused (a layer is unpacked by the container
// runtime, which must not be asked to follow links).
class TarLayer : public ImageSink {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TarLayer>> Create(
      const std::string& path, int64_t timestamp);
  ~TarLayer() override;

  [[nodiscard]] absl::Status Add(const FileEntry& entry,
                                 absl::string_view data) override;
  [[nodiscard]] absl::Status Finish() override;

 private:
  TarLayer() = default;
  [[nodiscard]] absl::Status AddDirectoryParents(const std::string& path);
  [[nodiscard]] absl::Status Write(const FileEntry& entry,
                                   absl::string_view data);

  std::string path_;
  int64_t timestamp_ = 0;
  archive* archive_ = nullptr;
  std::set<std::string> directories_;
  std::set<std::string> others_;
  std::set<std::string> symlinks_;
};

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_TAR_LAYER_H_
