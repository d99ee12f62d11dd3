#include "rootfs/image/tar_layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::unique_ptr<TarLayer>> TarLayer::Create(
    const std::string& path, int64_t timestamp) {
  std::unique_ptr<TarLayer> layer(new TarLayer());
  layer->path_ = path;
  layer->timestamp_ = timestamp;
  layer->archive_ = archive_write_new();
  // pax "restricted": ustar headers, pax records only where needed (long
  // names, xattrs), and no atime/ctime records that would vary.
  archive_write_set_format_pax_restricted(layer->archive_);
  archive_write_set_bytes_in_last_block(layer->archive_, 1);
  if (archive_write_open_filename(layer->archive_, path.c_str()) !=
      ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(
        "layer ", path, ": ", archive_error_string(layer->archive_)));
  }
  return layer;
}

TarLayer::~TarLayer() {
  if (archive_ != nullptr) archive_write_free(archive_);
}

[[nodiscard]] absl::Status TarLayer::AddDirectoryParents(
    const std::string& path) {
  const std::string parent = Parent(path);
  if (parent.empty() || directories_.count(parent)) return absl::OkStatus();
  if (symlinks_.count(parent) || others_.count(parent)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer ", path_, ": '/", path, "' would be written through '/", parent,
        "', which is not a directory in the layer"));
  }
  RETURN_IF_ERROR(AddDirectoryParents(parent));
  FileEntry dir;
  dir.type = FileEntry::Type::kDirectory;
  dir.path = parent;
  dir.mode = 0755;
  directories_.insert(parent);
  return Write(dir, "");
}

[[nodiscard]] absl::Status TarLayer::Add(const FileEntry& entry,
                                         absl::string_view data) {
  if (archive_ == nullptr)
    return absl::FailedPreconditionError("layer already finished");
  if (entry.path.empty()) return absl::OkStatus();  // "./": implicit.
  RETURN_IF_ERROR(AddDirectoryParents(entry.path));
  if (directories_.count(entry.path)) {
    if (entry.type == FileEntry::Type::kDirectory) return absl::OkStatus();
  }
  if (directories_.count(entry.path) || others_.count(entry.path)) {
    return absl::AlreadyExistsError(absl::StrCat("layer ", path_, ": adding '/",
                                                 entry.path,
                                                 "': the path exists already"));
  }
  if (entry.type == FileEntry::Type::kHardlink &&
      !others_.count(entry.link_target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", path_, ": hard link '/", entry.path, "' to '/",
                     entry.link_target, "', which is not a file in the layer"));
  }
  if (entry.type == FileEntry::Type::kDirectory) {
    directories_.insert(entry.path);
  } else {
    others_.insert(entry.path);
    if (entry.type == FileEntry::Type::kSymlink) symlinks_.insert(entry.path);
  }
  return Write(entry, data);
}

[[nodiscard]] absl::Status TarLayer::Write(const FileEntry& entry,
                                           absl::string_view data) {
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, entry.type == FileEntry::Type::kDirectory
                                    ? (entry.path + "/").c_str()
                                    : entry.path.c_str());
  mode_t type = AE_IFREG;
  switch (entry.type) {
    case FileEntry::Type::kFile:
      archive_entry_set_size(e, data.size());
      break;
    case FileEntry::Type::kDirectory:
      type = AE_IFDIR;
      break;
    case FileEntry::Type::kSymlink:
      type = AE_IFLNK;
      archive_entry_set_symlink(e, entry.link_target.c_str());
      break;
    case FileEntry::Type::kHardlink:
      archive_entry_set_hardlink(e, entry.link_target.c_str());
      break;
    case FileEntry::Type::kCharDevice:
      type = AE_IFCHR;
      archive_entry_set_rdevmajor(e, entry.rdev_major);
      archive_entry_set_rdevminor(e, entry.rdev_minor);
      break;
    case FileEntry::Type::kBlockDevice:
      type = AE_IFBLK;
      archive_entry_set_rdevmajor(e, entry.rdev_major);
      archive_entry_set_rdevminor(e, entry.rdev_minor);
      break;
    case FileEntry::Type::kFifo:
      type = AE_IFIFO;
      break;
  }
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, entry.mode & 07777);
  archive_entry_set_uid(e, entry.uid);
  archive_entry_set_gid(e, entry.gid);
  archive_entry_set_mtime(e, timestamp_, 0);
  for (const auto& [name, value] : entry.xattrs) {
    archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
  }
  absl::Status status;
  if (archive_write_header(archive_, e) != ARCHIVE_OK ||
      (entry.type == FileEntry::Type::kFile && !data.empty() &&
       archive_write_data(archive_, data.data(), data.size()) !=
           static_cast<la_ssize_t>(data.size()))) {
    status = absl::InternalError(
        absl::StrCat("layer ", path_, ": writing '/", entry.path,
                     "': ", archive_error_string(archive_)));
  }
  archive_entry_free(e);
  return status;
}

[[nodiscard]] absl::Status TarLayer::Finish() {
  if (archive_ == nullptr)
    return absl::FailedPreconditionError("layer already finished");
  const int rc = archive_write_close(archive_);
  const std::string error =
      rc == ARCHIVE_OK ? "" : archive_error_string(archive_);
  archive_write_free(archive_);
  archive_ = nullptr;
  if (rc != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("layer ", path_, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace fcvm::rootfs
