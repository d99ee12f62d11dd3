#include "runner/exec/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <set>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/eintr.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::runner::exec {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

struct ArchiveFree {
  void operator()(archive* a) const {
    if (a != nullptr) archive_free(a);  // Read or write: both close first.
  }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

// A name that is one path component.
[[nodiscard]] absl::Status CheckComponent(absl::string_view what,
                                          const std::string& name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "' is not a file name"));
  }
  return absl::OkStatus();
}

// The callbacks' view of our sink or source, and what failed in them
// (libarchive only hears "-1").
struct Stream {
  ByteSink* sink = nullptr;
  ByteSource* source = nullptr;
  absl::Status status;
};

la_ssize_t WriteToSink(archive* a, void* context, const void* buffer,
                       size_t length) {
  Stream& stream = *static_cast<Stream*>(context);
  if (!stream.status.ok()) return -1;  // The sink failed: nothing more.
  stream.status = stream.sink->Write(
      absl::string_view(static_cast<const char*>(buffer), length));
  if (!stream.status.ok()) {
    archive_set_error(a, EIO, "%s",
                      std::string(stream.status.message()).c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(length);
}

la_ssize_t ReadFromSource(archive* a, void* context, const void** buffer) {
  Stream& stream = *static_cast<Stream*>(context);
  absl::StatusOr<absl::string_view> bytes = stream.source->Read();
  if (!bytes.ok()) {
    stream.status = bytes.status();
    archive_set_error(a, EIO, "%s",
                      std::string(stream.status.message()).c_str());
    return -1;
  }
  *buffer = bytes->data();
  return static_cast<la_ssize_t>(bytes->size());
}

// libarchive's error, unless it was our callback's.
absl::Status ArchiveError(archive* a, const Stream& stream,
                          absl::string_view context) {
  if (!stream.status.ok()) return Annotate(stream.status, context);
  const char* error = archive_error_string(a);
  return absl::InternalError(absl::StrCat(
      context, ": ", error != nullptr ? error : "libarchive failed"));
}

[[nodiscard]] absl::Status AddPath(archive* a, const Stream& stream,
                                   const std::string& path,
                                   const std::string& name,
                                   const struct stat& st) {
  if (S_ISSOCK(st.st_mode)) return absl::OkStatus();  // Tar has no sockets.
  UniqueFd file;
  struct stat info = st;
  if (S_ISREG(st.st_mode)) {
    ASSIGN_OR_RETURN(file, OpenFd(path, O_RDONLY | O_NOFOLLOW));
    // The header must give the size of what is read, not of what was.
    if (fstat(file.get(), &info) != 0) return ErrnoStatus("fstat " + path);
    if (!S_ISREG(info.st_mode)) {
      return absl::AbortedError(path + " changed while being copied");
    }
  }
  EntryPtr entry(archive_entry_new());
  archive_entry_copy_stat(entry.get(), &info);
  archive_entry_set_pathname(entry.get(), name.c_str());
  if (S_ISLNK(st.st_mode)) {
    std::string target(PATH_MAX, '\0');
    const ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("readlink " + path);
    target.resize(n);
    archive_entry_set_symlink(entry.get(), target.c_str());
    archive_entry_set_size(entry.get(), 0);
  }
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    return ArchiveError(a, stream, "archiving " + path);
  }
  if (file) {
    std::string buffer(kChunkBytes, '\0');
    off_t left = info.st_size;
    while (left > 0) {
      const size_t want = std::min<off_t>(left, buffer.size());
      const ssize_t n =
          RetryEintr([&] { return read(file.get(), buffer.data(), want); });
      if (n < 0) return ErrnoStatus("read " + path);
      if (n == 0)
        return absl::AbortedError(path + " shrank while being copied");
      if (archive_write_data(a, buffer.data(), n) != n) {
        return ArchiveError(a, stream, "archiving " + path);
      }
      left -= n;
    }
  }
  if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
  std::vector<std::string> children;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(path.c_str()), closedir);
    if (dir == nullptr) return ErrnoStatus("opendir " + path);
    while (dirent* child = readdir(dir.get())) {
      const std::string child_name = child->d_name;
      if (child_name != "." && child_name != "..") {
        children.push_back(child_name);
      }
    }
  }
  std::sort(children.begin(), children.end());  // The same tree, the same tar.
  for (const std::string& child : children) {
    const std::string child_path = absl::StrCat(path, "/", child);
    struct stat child_st;
    if (lstat(child_path.c_str(), &child_st) != 0) {
      return ErrnoStatus("lstat " + child_path);
    }
    RETURN_IF_ERROR(AddPath(a, stream, child_path,
                            absl::StrCat(name, "/", child), child_st));
  }
  return absl::OkStatus();
}

// Where the entry `name` goes under the destination (its top renamed), or
// why it may not.
[[nodiscard]] absl::StatusOr<std::string> Place(
    absl::string_view name, const std::string& top, const std::string& rename,
    const std::string& dest_dir, const std::set<std::string>& symlinks,
    absl::string_view refused) {
  const auto escapes = [&] {
    return absl::PermissionDeniedError(
        absl::StrCat(refused, " escapes ", dest_dir));
  };
  if (!name.empty() && name[0] == '/') return escapes();
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(name, '/', absl::SkipEmpty())) {
    if (part == "..") return escapes();
    if (part != ".") parts.emplace_back(part);
  }
  if (parts.empty() || parts[0] != top) {
    return absl::PermissionDeniedError(
        absl::StrCat(refused, " is not under '", top, "'"));
  }
  if (!rename.empty()) parts[0] = rename;
  // Through a symlink this archive made, an entry could land anywhere.
  std::string prefix = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    if (symlinks.count(prefix) != 0) return escapes();
    absl::StrAppend(&prefix, "/", parts[i]);
  }
  return prefix;
}

}  // namespace

absl::Status WriteTar(const std::string& src_path, const std::string& top_name,
                      ByteSink& sink) {
  RETURN_IF_ERROR(CheckComponent("the archive's top name", top_name));
  struct stat st;
  if (lstat(src_path.c_str(), &st) != 0) return ErrnoStatus(src_path);
  // Before the archive: freeing an open archive flushes it into `stream`.
  Stream stream;
  stream.sink = &sink;
  ArchivePtr a(archive_write_new());
  // pax "restricted": ustar headers, pax records only where needed (long
  // names, files over 8 GiB). Blocks of 64 KiB: one Data frame each.
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), kChunkBytes);
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &stream, nullptr, WriteToSink, nullptr) !=
      ARCHIVE_OK) {
    return ArchiveError(a.get(), stream, "archiving " + src_path);
  }
  RETURN_IF_ERROR(AddPath(a.get(), stream, src_path, top_name, st));
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), stream, "archiving " + src_path);
  }
  return absl::OkStatus();
}

absl::Status ExtractTar(ByteSource& source, const std::string& dest_dir,
                        const std::string& top_name,
                        const std::string& rename_top_to) {
  RETURN_IF_ERROR(CheckComponent("the archive's top name", top_name));
  if (!rename_top_to.empty()) {
    RETURN_IF_ERROR(CheckComponent("the new name", rename_top_to));
  }
  ASSIGN_OR_RETURN(UniqueFd dest, OpenFd(dest_dir, O_RDONLY | O_DIRECTORY));
  ASSIGN_OR_RETURN(UniqueFd cwd, OpenFd(".", O_PATH | O_DIRECTORY));
  // Entry paths are relative (SECURE_NOABSOLUTEPATHS) and libarchive
  // resolves them against the working directory, whose own path may hold
  // symlinks that SECURE_SYMLINKS would refuse: so the destination becomes
  // the working directory for the extraction.
  if (fchdir(dest.get()) != 0) return ErrnoStatus("chdir " + dest_dir);
  absl::Cleanup back = [&cwd] { (void)!fchdir(cwd.get()); };

  Stream stream;  // Outlives the archive that calls into it.
  stream.source = &source;
  ArchivePtr in(archive_read_new());
  archive_read_support_format_tar(in.get());
  archive_read_support_filter_none(in.get());
  if (archive_read_open(in.get(), &stream, nullptr, ReadFromSource, nullptr) !=
      ARCHIVE_OK) {
    return ArchiveError(in.get(), stream, "reading the archive");
  }
  ArchivePtr out(archive_write_disk_new());
  archive_write_disk_set_options(out.get(),
                                 ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                     ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                     ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                     ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  const std::string top_path = rename_top_to.empty() ? top_name : rename_top_to;
  std::set<std::string> symlinks;
  size_t entries = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return ArchiveError(in.get(), stream, "reading the archive");
    }
    const char* raw_name = archive_entry_pathname(entry);
    const std::string name = raw_name != nullptr ? raw_name : "";
    const std::string refused = absl::StrCat("refusing '", name, "': it");
    ASSIGN_OR_RETURN(
        const std::string path,
        Place(name, top_name, rename_top_to, dest_dir, symlinks, refused));
    if (const char* link = archive_entry_hardlink(entry)) {
      ASSIGN_OR_RETURN(
          const std::string target,
          Place(link, top_name, rename_top_to, dest_dir, symlinks,
                absl::StrCat(refused, "s link target '", link, "'")));
      archive_entry_set_hardlink(entry, target.c_str());
    }
    const bool directory = archive_entry_filetype(entry) == AE_IFDIR;
    struct stat existing;
    if (directory && path == top_path && lstat(path.c_str(), &existing) == 0 &&
        !S_ISDIR(existing.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot copy a directory over the non-directory ",
                       dest_dir, "/", path));
    }
    archive_entry_set_pathname(entry, path.c_str());
    // No setuid or setgid bit from the guest's archive: run as root, fcvm
    // would otherwise leave a setuid-root file the guest chose (libarchive
    // keeps the bits when the entry's owner is the extracting user).
    archive_entry_set_perm(entry, archive_entry_perm(entry) & 01777);
    const std::string unpacking =
        absl::StrCat("unpacking '", name, "' into ", dest_dir);
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      return ArchiveError(out.get(), Stream{}, unpacking);
    }
    for (;;) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      const int got = archive_read_data_block(in.get(), &block, &size, &offset);
      if (got == ARCHIVE_EOF) break;
      if (got < ARCHIVE_WARN) {
        return ArchiveError(in.get(), stream, "reading the archive");
      }
      if (archive_write_data_block(out.get(), block, size, offset) <
          ARCHIVE_WARN) {
        return ArchiveError(out.get(), Stream{}, unpacking);
      }
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      return ArchiveError(out.get(), Stream{}, unpacking);
    }
    if (archive_entry_filetype(entry) == AE_IFLNK) symlinks.insert(path);
    ++entries;
  }
  // Directories get their modes and times last (a 0500 directory must
  // still take its files first).
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return ArchiveError(out.get(), Stream{}, "unpacking into " + dest_dir);
  }
  if (entries == 0) {
    return absl::InvalidArgumentError("the archive holds no files");
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner::exec
