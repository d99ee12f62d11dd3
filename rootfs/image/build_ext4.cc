#include "rootfs/image/build_ext4.h"

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "rootfs/image/ext4_image.h"

namespace fcvm::rootfs {
namespace {

// Size and identity of the filesystem.
Ext4Options FilesystemOptions(const ImageDefinition& definition,
                              const PreparedImage& prepared) {
  const std::string& digest = prepared.input_digest;
  Ext4Options ext4;
  for (int i = 0; i < 16; ++i) {
    ext4.uuid[i] =
        static_cast<uint8_t>(std::stoi(digest.substr(2 * i, 2), nullptr, 16));
  }
  // RFC 9562: version 8 (custom), variant 10.
  ext4.uuid[6] = (ext4.uuid[6] & 0x0f) | 0x80;
  ext4.uuid[8] = (ext4.uuid[8] & 0x3f) | 0x80;
  for (int i = 0; i < 4; ++i) {
    ext4.hash_seed[i] = static_cast<uint32_t>(
        std::stoul(digest.substr(32 + 8 * i, 8), nullptr, 16));
  }
  ext4.timestamp = definition.source_date_epoch();
  ext4.label = definition.name().substr(0, 16);
  // Installed-Size is in KiB of content; ext4 needs a block per small
  // file, inode tables and a journal-free but non-zero slack.
  const uint64_t bytes = prepared.content_bytes;
  const uint64_t estimate = bytes + bytes / 4 + (32ull << 20);
  ext4.size_bytes =
      definition.size_mib() != 0
          ? uint64_t{definition.size_mib()} << 20
          : (estimate + (4ull << 20) - 1) / (4ull << 20) * (4ull << 20);
  // One inode per 8 KiB: Debian trees are full of small files.
  ext4.inode_count = static_cast<uint32_t>(ext4.size_bytes / 8192);
  return ext4;
}

[[nodiscard]] absl::StatusOr<AssembleReport> Build(
    const AssembleOptions& options) {
  ASSIGN_OR_RETURN(PreparedImage prepared, PrepareImage(options));
  const Ext4Options ext4 = FilesystemOptions(options.definition, prepared);
  ASSIGN_OR_RETURN(std::unique_ptr<Ext4Image> image,
                   Ext4Image::Create(options.output, ext4));
  RETURN_IF_ERROR(FillImage(options, prepared, *image));
  AssembleReport report;
  report.packages = prepared.packages.size();
  report.packages_with_scripts = prepared.packages_with_scripts;
  report.blocks_used = image->used_blocks();
  RETURN_IF_ERROR(image->Finish());
  report.size_bytes = ext4.size_bytes;
  report.uuid = absl::StrCat(prepared.input_digest.substr(0, 8), "-",
                             prepared.input_digest.substr(8, 4));
  return report;
}

}  // namespace

[[nodiscard]] absl::StatusOr<AssembleReport> BuildExt4Image(
    const AssembleOptions& options) {
  return Annotate(Build(options),
                  absl::StrCat("building image '", options.definition.name(),
                               "' into ", options.output));
}

}  // namespace fcvm::rootfs
