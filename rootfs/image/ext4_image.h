#ifndef FCVM_ROOTFS_IMAGE_EXT4_IMAGE_H_
#define FCVM_ROOTFS_IMAGE_EXT4_IMAGE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/image_sink.h"

struct struct_ext2_filsys;

namespace fcvm::rootfs {

struct Ext4Options {
  uint64_t size_bytes = 0;  // Rounded down to whole blocks.
  uint32_t block_size = 4096;
  uint32_t inode_count = 0;  // 0: one per 16 KiB.
  // Fixed identity, so the same inputs give the same bytes: the volume UUID
  // and the directory-hash seed (derive both from the inputs).
  std::array<uint8_t, 16> uuid = {};
  std::array<uint32_t, 4> hash_seed = {};
  // Every timestamp in the image (SOURCE_DATE_EPOCH).
  int64_t timestamp = 0;
  std::string label;
};

// Writes an ext4 filesystem image straight from file entries with libext2fs:
// no root, no mount, no staging directory. Owners, modes (setuid too),
// symlinks, hard links, device nodes and xattrs are stored exactly as given;
// every time is the fixed timestamp and inodes are allocated in entry order,
// so equal inputs give byte-identical images.
//
// Paths are resolved inside the image: a parent that is a symlink is
// followed within the image root (absolute targets start at the image root),
// and a path that would leave the root is refused. Missing parents are made
// as 0755 root:root directories.
class Ext4Image : public ImageSink {
 public:
  // Creates `path` (sparse, size_bytes) holding an empty filesystem with
  // "/" and "/lost+found".
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Ext4Image>> Create(
      const std::string& path, const Ext4Options& options);
  ~Ext4Image() override;

  // Adds one entry; `data` is the content of a regular file. A directory
  // that exists already keeps its first attributes (as dpkg does); any other
  // existing path is an error naming it.
  [[nodiscard]] absl::Status Add(const FileEntry& entry,
                                 absl::string_view data) override;

  // Blocks in use so far (metadata included).
  uint64_t used_blocks() const;

  // Writes the metadata and closes the image. Nothing may be added after.
  [[nodiscard]] absl::Status Finish() override;

 private:
  Ext4Image() = default;
  // A path inside the image with every symlink resolved, and its inode.
  struct Resolved {
    std::string path;
    uint32_t ino = 0;
  };
  [[nodiscard]] absl::StatusOr<Resolved> Resolve(const std::string& path,
                                                 int depth, bool follow_last);
  [[nodiscard]] absl::StatusOr<Resolved> EnsureDirectory(
      const std::string& path);
  [[nodiscard]] absl::Status SetAttributes(uint32_t ino, const FileEntry& entry,
                                           bool keep_links);
  [[nodiscard]] absl::Status LinkInto(uint32_t dir, const std::string& name,
                                      uint32_t ino, int file_type);
  [[nodiscard]] absl::Status WriteData(uint32_t ino, absl::string_view data);

  std::string path_;
  Ext4Options options_;
  struct_ext2_filsys* fs_ = nullptr;
  // Every path in the image (canonical: no symlink in it) -> inode, and
  // symlink targets by canonical path.
  std::map<std::string, uint32_t> inodes_;
  std::map<std::string, std::string> symlinks_;
};

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_EXT4_IMAGE_H_
