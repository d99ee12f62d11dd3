#include "rootfs/image/ext4_image.h"

#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

// Symlink hops allowed while resolving one path (as the kernel's 40).
constexpr int kMaxSymlinkDepth = 40;

// Makes error_message() know libext2fs's codes ("No free space in the
// directory", not "Unknown code ext2 38").
void RegisterErrorTable() {
  static std::once_flag once;
  std::call_once(once, [] { initialize_ext2_error_table(); });
}

// Runs `op`, which adds an entry to directory `dir`; if the directory is
// full, grows it by a block and runs `op` once more.
errcode_t WithRoom(ext2_filsys fs, ext2_ino_t dir,
                   const std::function<errcode_t()>& op) {
  errcode_t err = op();
  if (err == EXT2_ET_DIR_NO_SPACE) {
    err = ext2fs_expand_dir(fs, dir);
    if (err == 0) err = op();
  }
  return err;
}

[[nodiscard]] absl::Status Ext2Error(errcode_t err, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", error_message(err)));
}

#define RETURN_IF_EXT2_ERROR(expr, what)                   \
  do {                                                     \
    errcode_t fcvm_err_ = (expr);                          \
    if (fcvm_err_ != 0) return Ext2Error(fcvm_err_, what); \
  } while (false)

// How an entry type is stored: inode mode bits and directory-entry type.
struct TypeInfo {
  uint16_t mode_bits;
  int dirent_type;
};

TypeInfo InfoOf(FileEntry::Type type) {
  switch (type) {
    case FileEntry::Type::kDirectory:
      return {LINUX_S_IFDIR, EXT2_FT_DIR};
    case FileEntry::Type::kSymlink:
      return {LINUX_S_IFLNK, EXT2_FT_SYMLINK};
    case FileEntry::Type::kCharDevice:
      return {LINUX_S_IFCHR, EXT2_FT_CHRDEV};
    case FileEntry::Type::kBlockDevice:
      return {LINUX_S_IFBLK, EXT2_FT_BLKDEV};
    case FileEntry::Type::kFifo:
      return {LINUX_S_IFIFO, EXT2_FT_FIFO};
    default:
      return {LINUX_S_IFREG, EXT2_FT_REG_FILE};
  }
}

// The directory-entry type of an existing inode's mode.
int FileTypeOfMode(uint16_t mode) {
  if (LINUX_S_ISREG(mode)) return EXT2_FT_REG_FILE;
  if (LINUX_S_ISDIR(mode)) return EXT2_FT_DIR;
  if (LINUX_S_ISLNK(mode)) return EXT2_FT_SYMLINK;
  if (LINUX_S_ISCHR(mode)) return EXT2_FT_CHRDEV;
  if (LINUX_S_ISBLK(mode)) return EXT2_FT_BLKDEV;
  if (LINUX_S_ISFIFO(mode)) return EXT2_FT_FIFO;
  if (LINUX_S_ISSOCK(mode)) return EXT2_FT_SOCK;
  return EXT2_FT_UNKNOWN;
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string Base(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::unique_ptr<Ext4Image>> Ext4Image::Create(
    const std::string& path, const Ext4Options& options) {
  RegisterErrorTable();
  const std::string context = absl::StrCat("creating ext4 image ", path);
  if (options.block_size != 1024 && options.block_size != 2048 &&
      options.block_size != 4096) {
    return absl::InvalidArgumentError(context +
                                      ": block size must be 1, 2 or 4 KiB");
  }
  const uint64_t blocks = options.size_bytes / options.block_size;
  if (blocks < 64)
    return absl::InvalidArgumentError(context + ": image too small");

  // A fresh sparse file: unwritten blocks read as zeros, so unused inode
  // tables and free space are deterministic without writing them.
  {
    int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return Annotate(ErrnoStatus("open " + path), context);
    bool ok =
        ftruncate(fd, static_cast<off_t>(blocks * options.block_size)) == 0;
    int saved = errno;
    close(fd);
    if (!ok) return Annotate(ErrnoStatus(saved, "truncate " + path), context);
  }

  struct ext2_super_block param;
  memset(&param, 0, sizeof(param));
  ext2fs_blocks_count_set(&param, blocks);
  param.s_log_block_size = __builtin_ctz(options.block_size) - 10;
  param.s_rev_level = EXT2_DYNAMIC_REV;
  param.s_inode_size = 256;
  param.s_inodes_count =
      options.inode_count != 0
          ? options.inode_count
          : static_cast<uint32_t>(options.size_bytes / 16384);
  param.s_log_groups_per_flex = 4;
  param.s_feature_compat =
      EXT2_FEATURE_COMPAT_DIR_INDEX | EXT2_FEATURE_COMPAT_EXT_ATTR;
  param.s_feature_incompat =
      EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
      EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_64BIT;
  param.s_feature_ro_compat =
      EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
      EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
      EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
  param.s_min_extra_isize = param.s_want_extra_isize = 32;

  std::unique_ptr<Ext4Image> image(new Ext4Image());
  image->path_ = path;
  image->options_ = options;
  ext2_filsys fs = nullptr;
  RETURN_IF_EXT2_ERROR(ext2fs_initialize(path.c_str(), EXT2_FLAG_64BITS, &param,
                                         unix_io_manager, &fs),
                       context);
  image->fs_ = fs;
  // Identity and time come from the options, never from the machine.
  fs->now = options.timestamp;
  memcpy(fs->super->s_uuid, options.uuid.data(), 16);
  for (int i = 0; i < 4; ++i) fs->super->s_hash_seed[i] = options.hash_seed[i];
  fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
  fs->super->s_mkfs_time = fs->super->s_wtime = fs->super->s_lastcheck =
      static_cast<uint32_t>(options.timestamp);
  fs->super->s_max_mnt_count = -1;
  strncpy(reinterpret_cast<char*>(fs->super->s_volume_name),
          options.label.c_str(), sizeof(fs->super->s_volume_name));
  // metadata_csum uses CRC32C, seeded from the (fixed) UUID.
  fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
  ext2fs_init_csum_seed(fs);
  RETURN_IF_EXT2_ERROR(ext2fs_allocate_tables(fs),
                       context + ": allocate tables");
  // Inode tables read as zeros in a fresh sparse file.
  for (dgrp_t g = 0; g < fs->group_desc_count; ++g) {
    ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
  }
  RETURN_IF_EXT2_ERROR(ext2fs_convert_subcluster_bitmap(fs, &fs->block_map),
                       context + ": bitmap");

  // Inode 1 (bad blocks) and the reserved inodes after the root are in use.
  ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
  for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); ++i) {
    ext2fs_inode_alloc_stats2(fs, i, +1, 0);
  }
  {
    struct ext2_inode bad;
    memset(&bad, 0, sizeof(bad));
    bad.i_atime = bad.i_ctime = bad.i_mtime =
        static_cast<uint32_t>(options.timestamp);
    RETURN_IF_EXT2_ERROR(ext2fs_write_new_inode(fs, EXT2_BAD_INO, &bad),
                         context + ": bad blocks inode");
  }
  RETURN_IF_EXT2_ERROR(ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, nullptr),
                       context + ": root directory");
  image->inodes_[""] = EXT2_ROOT_INO;
  FileEntry root;
  root.type = FileEntry::Type::kDirectory;
  root.mode = 0755;
  RETURN_IF_ERROR(
      Annotate(image->SetAttributes(EXT2_ROOT_INO, root, true), context));

  // lost+found, pre-sized as mke2fs does so e2fsck can use it.
  RETURN_IF_EXT2_ERROR(ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found"),
                       context + ": lost+found");
  ext2_ino_t lpf;
  RETURN_IF_EXT2_ERROR(
      ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, nullptr, &lpf),
      context + ": lost+found");
  for (uint32_t size = options.block_size; size < 16384;
       size += options.block_size) {
    RETURN_IF_EXT2_ERROR(ext2fs_expand_dir(fs, lpf), context + ": lost+found");
  }
  FileEntry lost_found;
  lost_found.type = FileEntry::Type::kDirectory;
  lost_found.mode = 0700;
  RETURN_IF_ERROR(
      Annotate(image->SetAttributes(lpf, lost_found, true), context));
  image->inodes_["lost+found"] = lpf;
  return image;
}

Ext4Image::~Ext4Image() {
  if (fs_ != nullptr) {
    // Not finished: drop it without writing more metadata.
    ext2fs_free(fs_);
  }
}

[[nodiscard]] absl::Status Ext4Image::SetAttributes(uint32_t ino,
                                                    const FileEntry& entry,
                                                    bool keep_links) {
  struct ext2_inode_large inode;
  memset(&inode, 0, sizeof(inode));
  RETURN_IF_EXT2_ERROR(
      ext2fs_read_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode),
                             sizeof(inode)),
      absl::StrCat("read inode ", ino));
  inode.i_mode = static_cast<uint16_t>(InfoOf(entry.type).mode_bits |
                                       (entry.mode & 07777));
  inode.i_uid = static_cast<uint16_t>(entry.uid);
  inode.osd2.linux2.l_i_uid_high = static_cast<uint16_t>(entry.uid >> 16);
  inode.i_gid = static_cast<uint16_t>(entry.gid);
  inode.osd2.linux2.l_i_gid_high = static_cast<uint16_t>(entry.gid >> 16);
  const uint32_t t = static_cast<uint32_t>(options_.timestamp);
  inode.i_atime = inode.i_ctime = inode.i_mtime = t;
  inode.i_crtime = t;
  inode.i_atime_extra = inode.i_ctime_extra = inode.i_mtime_extra =
      inode.i_crtime_extra = 0;
  if (!keep_links && inode.i_links_count == 0) inode.i_links_count = 1;
  RETURN_IF_EXT2_ERROR(
      ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode),
                              sizeof(inode)),
      absl::StrCat("write inode ", ino));
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<Ext4Image::Resolved> Ext4Image::Resolve(
    const std::string& path, int depth, bool follow_last) {
  if (depth > kMaxSymlinkDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many symlinks resolving '", path, "'"));
  }
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::string done;  // The resolved, symlink-free prefix.
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string next =
        done.empty() ? parts[i] : absl::StrCat(done, "/", parts[i]);
    auto link = symlinks_.find(next);
    if (link != symlinks_.end() && (i + 1 < parts.size() || follow_last)) {
      // Follow it inside the image: absolute targets start at the image root,
      // relative ones at the link's directory; ".." may not leave the root.
      std::string target = link->second[0] == '/'
                               ? link->second
                               : absl::StrCat(done, "/", link->second);
      std::vector<std::string> rest(parts.begin() + i + 1, parts.end());
      if (!rest.empty())
        absl::StrAppend(&target, "/", absl::StrJoin(rest, "/"));
      absl::StatusOr<std::string> normal = NormalizeEntryPath(target);
      if (!normal.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", path, "' leads out of the image root through symlink '", next,
            "' -> '", link->second, "'"));
      }
      return Resolve(*normal, depth + 1, follow_last);
    }
    done = next;
  }
  auto it = inodes_.find(done);
  if (it == inodes_.end())
    return absl::NotFoundError(absl::StrCat("no '", done, "' in the image"));
  return Resolved{done, it->second};
}

[[nodiscard]] absl::StatusOr<Ext4Image::Resolved> Ext4Image::EnsureDirectory(
    const std::string& path) {
  absl::StatusOr<Resolved> found = Resolve(path, 0, /*follow_last=*/true);
  if (found.ok() || !absl::IsNotFound(found.status())) return found;
  FileEntry dir;
  dir.type = FileEntry::Type::kDirectory;
  dir.path = path;
  dir.mode = 0755;
  RETURN_IF_ERROR(Add(dir, ""));
  return Resolve(path, 0, true);
}

[[nodiscard]] absl::Status Ext4Image::LinkInto(uint32_t dir,
                                               const std::string& name,
                                               uint32_t ino, int file_type) {
  RETURN_IF_EXT2_ERROR(
      WithRoom(
          fs_, dir,
          [&] { return ext2fs_link(fs_, dir, name.c_str(), ino, file_type); }),
      "link " + name);
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Ext4Image::WriteData(uint32_t ino,
                                                absl::string_view data) {
  ext2_file_t file;
  RETURN_IF_EXT2_ERROR(ext2fs_file_open(fs_, ino, EXT2_FILE_WRITE, &file),
                       "open file");
  size_t offset = 0;
  while (offset < data.size()) {
    unsigned int written = 0;
    errcode_t err =
        ext2fs_file_write(file, data.data() + offset,
                          static_cast<unsigned int>(
                              std::min<size_t>(data.size() - offset, 1 << 20)),
                          &written);
    if (err != 0) {
      ext2fs_file_close(file);
      return Ext2Error(err, "write file");
    }
    offset += written;
  }
  RETURN_IF_EXT2_ERROR(ext2fs_file_close(file), "close file");
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Ext4Image::Add(const FileEntry& entry,
                                          absl::string_view data) {
  if (fs_ == nullptr)
    return absl::FailedPreconditionError("image already finished");
  const std::string context =
      absl::StrCat(path_, ": adding '/", entry.path, "'");
  if (entry.path.empty()) {  // The root directory's own attributes.
    return Annotate(SetAttributes(EXT2_ROOT_INO, entry, true), context);
  }
  const std::string name = Base(entry.path);
  ASSIGN_OR_RETURN(Resolved parent_dir,
                   Annotate(EnsureDirectory(Parent(entry.path)), context));
  const uint32_t parent = parent_dir.ino;
  // Where it really is: the parent resolved through symlinks.
  const std::string canonical =
      parent_dir.path.empty() ? name : absl::StrCat(parent_dir.path, "/", name);
  ext2_ino_t existing = 0;
  if (ext2fs_lookup(fs_, parent, name.c_str(), static_cast<int>(name.size()),
                    nullptr, &existing) == 0) {
    struct ext2_inode inode;
    if (entry.type == FileEntry::Type::kDirectory &&
        ext2fs_read_inode(fs_, existing, &inode) == 0) {
      if (LINUX_S_ISDIR(inode.i_mode)) {
        return absl::OkStatus();  // First attributes win, as with dpkg.
      }
      // A symlink to a directory stays (dpkg keeps it, and merged /usr
      // relies on it): the archive's directory is that directory.
      if (LINUX_S_ISLNK(inode.i_mode)) {
        absl::StatusOr<Resolved> target = Resolve(canonical, 0, true);
        if (target.ok() && ext2fs_read_inode(fs_, target->ino, &inode) == 0 &&
            LINUX_S_ISDIR(inode.i_mode)) {
          return absl::OkStatus();
        }
      }
    }
    return absl::AlreadyExistsError(
        absl::StrCat(context, ": the path exists already"));
  }

  ext2_ino_t ino = 0;
  switch (entry.type) {
    case FileEntry::Type::kDirectory: {
      RETURN_IF_EXT2_ERROR(
          WithRoom(fs_, parent,
                   [&] { return ext2fs_mkdir(fs_, parent, 0, name.c_str()); }),
          context);
      RETURN_IF_EXT2_ERROR(
          ext2fs_lookup(fs_, parent, name.c_str(),
                        static_cast<int>(name.size()), nullptr, &ino),
          context);
      RETURN_IF_ERROR(Annotate(SetAttributes(ino, entry, true), context));
      break;
    }
    case FileEntry::Type::kSymlink: {
      RETURN_IF_EXT2_ERROR(
          ext2fs_new_inode(fs_, parent, LINUX_S_IFLNK | 0777, nullptr, &ino),
          context);
      // Create the link's inode only (no name), then link it like any entry,
      // so a full directory grows the same way for every type.
      RETURN_IF_EXT2_ERROR(
          ext2fs_symlink(fs_, parent, ino, nullptr, entry.link_target.c_str()),
          context);
      RETURN_IF_ERROR(
          Annotate(LinkInto(parent, name, ino, EXT2_FT_SYMLINK), context));
      RETURN_IF_ERROR(Annotate(SetAttributes(ino, entry, true), context));
      symlinks_[canonical] = entry.link_target;
      break;
    }
    case FileEntry::Type::kHardlink: {
      ASSIGN_OR_RETURN(Resolved target,
                       Annotate(Resolve(entry.link_target, 0, false), context));
      ino = target.ino;
      struct ext2_inode inode;
      RETURN_IF_EXT2_ERROR(ext2fs_read_inode(fs_, ino, &inode), context);
      if (LINUX_S_ISDIR(inode.i_mode)) {
        return absl::InvalidArgumentError(context +
                                          ": hard link to a directory");
      }
      RETURN_IF_ERROR(Annotate(
          LinkInto(parent, name, ino, FileTypeOfMode(inode.i_mode)), context));
      inode.i_links_count++;
      RETURN_IF_EXT2_ERROR(ext2fs_write_inode(fs_, ino, &inode), context);
      break;
    }
    default: {  // Regular files, devices, FIFOs.
      const uint16_t mode = static_cast<uint16_t>(InfoOf(entry.type).mode_bits |
                                                  (entry.mode & 07777));
      RETURN_IF_EXT2_ERROR(ext2fs_new_inode(fs_, parent, mode, nullptr, &ino),
                           context);
      RETURN_IF_ERROR(
          Annotate(LinkInto(parent, name, ino, InfoOf(entry.type).dirent_type),
                   context));
      ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);
      struct ext2_inode_large inode;
      memset(&inode, 0, sizeof(inode));
      inode.i_mode = mode;
      inode.i_links_count = 1;
      inode.i_extra_isize = sizeof(inode) - EXT2_GOOD_OLD_INODE_SIZE;
      if (entry.type == FileEntry::Type::kCharDevice ||
          entry.type == FileEntry::Type::kBlockDevice) {
        // The kernel's device number encodings (old when it fits).
        const uint32_t major = entry.rdev_major, minor = entry.rdev_minor;
        if (major < 256 && minor < 256) {
          inode.i_block[0] = major * 256 + minor;
        } else {
          inode.i_block[1] =
              (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
        }
      } else if (entry.type == FileEntry::Type::kFile) {
        // Opening an extent handle on an inode without extents writes an
        // empty extent tree (and the flag) into it: valid even if no data
        // ever follows.
        ext2_extent_handle_t handle;
        RETURN_IF_EXT2_ERROR(
            ext2fs_extent_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&inode),
                                &handle),
            context + ": extents");
        ext2fs_extent_free(handle);
      }
      RETURN_IF_EXT2_ERROR(ext2fs_write_new_inode(
                               fs_, ino, reinterpret_cast<ext2_inode*>(&inode)),
                           context);
      if (entry.type == FileEntry::Type::kFile) {
        RETURN_IF_ERROR(Annotate(WriteData(ino, data), context));
      }
      RETURN_IF_ERROR(Annotate(SetAttributes(ino, entry, true), context));
      break;
    }
  }
  if (!entry.xattrs.empty() && entry.type != FileEntry::Type::kHardlink) {
    struct ext2_xattr_handle* handle;
    RETURN_IF_EXT2_ERROR(ext2fs_xattrs_open(fs_, ino, &handle),
                         context + ": xattrs");
    errcode_t err = ext2fs_xattrs_read(handle);
    for (const auto& [key, value] : entry.xattrs) {
      if (err == 0)
        err = ext2fs_xattr_set(handle, key.c_str(), value.data(), value.size());
    }
    ext2fs_xattrs_close(&handle);
    RETURN_IF_EXT2_ERROR(err, context + ": xattrs");
  }
  inodes_[canonical] = ino;
  return absl::OkStatus();
}

uint64_t Ext4Image::used_blocks() const {
  if (fs_ == nullptr) return 0;
  return ext2fs_blocks_count(fs_->super) - ext2fs_free_blocks_count(fs_->super);
}

[[nodiscard]] absl::Status Ext4Image::Finish() {
  if (fs_ == nullptr)
    return absl::FailedPreconditionError("image already finished");
  ext2_filsys fs = fs_;
  fs_ = nullptr;
  fs->super->s_wtime = static_cast<uint32_t>(options_.timestamp);
  // Per-group flags (uninitialized inode/block tables), unused-inode counts
  // and descriptor checksums, as the allocations left them.
  errcode_t csum = ext2fs_set_gdt_csum(fs);
  if (csum != 0) {
    ext2fs_free(fs);
    return Ext2Error(
        csum, absl::StrCat("writing ext4 image ", path_, ": group checksums"));
  }
  ext2fs_mark_super_dirty(fs);
  errcode_t err = ext2fs_close_free(&fs);
  if (err != 0)
    return Ext2Error(err, absl::StrCat("writing ext4 image ", path_));
  return absl::OkStatus();
}

}  // namespace fcvm::rootfs
