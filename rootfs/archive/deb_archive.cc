#include "rootfs/archive/deb_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<archive, ArchiveDeleter>;

[[nodiscard]] absl::Status ArchiveError(archive* a, absl::string_view what) {
  const char* error = archive_error_string(a);
  return absl::DataLossError(absl::StrCat(
      what, ": ", error != nullptr ? error : "unreadable archive"));
}

// The ar members of a .deb, by name ("debian-binary", "control.tar.xz", ...).
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ReadArMembers(
    const std::string& deb_path) {
  Reader a(archive_read_new());
  archive_read_support_format_ar(a.get());
  if (archive_read_open_filename(a.get(), deb_path.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    return ArchiveError(a.get(), deb_path);
  }
  std::map<std::string, std::string> members;
  archive_entry* entry;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    std::string data(static_cast<size_t>(archive_entry_size(entry)), '\0');
    la_ssize_t n = archive_read_data(a.get(), data.data(), data.size());
    if (n < 0 || static_cast<size_t>(n) != data.size()) {
      return ArchiveError(a.get(), absl::StrCat(deb_path, ": member ",
                                                archive_entry_pathname(entry)));
    }
    members[archive_entry_pathname(entry)] = std::move(data);
  }
  if (rc != ARCHIVE_EOF) return ArchiveError(a.get(), deb_path);
  if (members.count("debian-binary") == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        deb_path, ": not a Debian package (no debian-binary member)"));
  }
  return members;
}

// The member whose name starts with `prefix` ("data.tar").
[[nodiscard]] absl::StatusOr<const std::string*> Member(
    const std::map<std::string, std::string>& members, absl::string_view prefix,
    const std::string& deb_path) {
  for (const auto& [name, data] : members) {
    if (absl::StartsWith(name, prefix)) return &data;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(deb_path, ": no ", prefix, ".* member"));
}

// Opens a compressed tar held in memory.
[[nodiscard]] absl::StatusOr<Reader> OpenTar(const std::string& bytes,
                                             absl::string_view what) {
  Reader a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) !=
      ARCHIVE_OK) {
    return ArchiveError(a.get(), what);
  }
  return a;
}

FileEntry::Type TypeOf(archive_entry* e) {
  if (archive_entry_hardlink(e) != nullptr) return FileEntry::Type::kHardlink;
  switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
      return FileEntry::Type::kDirectory;
    case AE_IFLNK:
      return FileEntry::Type::kSymlink;
    case AE_IFCHR:
      return FileEntry::Type::kCharDevice;
    case AE_IFBLK:
      return FileEntry::Type::kBlockDevice;
    case AE_IFIFO:
      return FileEntry::Type::kFifo;
    default:
      return FileEntry::Type::kFile;
  }
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> NormalizeEntryPath(
    absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("path '", path, "' escapes the image root"));
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrJoin(parts, "/");
}

[[nodiscard]] absl::StatusOr<DebControl> ReadDebControl(
    const std::string& deb_path) {
  ASSIGN_OR_RETURN(auto members, ReadArMembers(deb_path));
  ASSIGN_OR_RETURN(const std::string* tar,
                   Member(members, "control.tar", deb_path));
  const std::string what = absl::StrCat(deb_path, ": control.tar");
  ASSIGN_OR_RETURN(Reader a, OpenTar(*tar, what));
  DebControl control;
  archive_entry* entry;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    ASSIGN_OR_RETURN(
        std::string name,
        Annotate(NormalizeEntryPath(archive_entry_pathname(entry)), what));
    std::string data(static_cast<size_t>(archive_entry_size(entry)), '\0');
    if (archive_read_data(a.get(), data.data(), data.size()) !=
        static_cast<la_ssize_t>(data.size())) {
      return ArchiveError(a.get(), absl::StrCat(what, ": ", name));
    }
    if (name == "control") {
      control.control = std::move(data);
    } else if (name == "preinst" || name == "postinst" || name == "prerm" ||
               name == "postrm" || name == "config" || name == "triggers") {
      control.scripts.push_back(name);
    }
  }
  if (rc != ARCHIVE_EOF) return ArchiveError(a.get(), what);
  if (control.control.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": no control file"));
  }
  std::sort(control.scripts.begin(), control.scripts.end());
  return control;
}

[[nodiscard]] absl::Status ReadDebData(
    const std::string& deb_path,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit) {
  ASSIGN_OR_RETURN(auto members, ReadArMembers(deb_path));
  ASSIGN_OR_RETURN(const std::string* tar,
                   Member(members, "data.tar", deb_path));
  const std::string what = absl::StrCat(deb_path, ": data.tar");
  ASSIGN_OR_RETURN(Reader a, OpenTar(*tar, what));
  return VisitTarEntries(a.get(), what, visit);
}

[[nodiscard]] absl::Status VisitTarEntries(
    archive* a, const std::string& what,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit) {
  archive_entry* e;
  int rc;
  std::string data;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    FileEntry entry;
    ASSIGN_OR_RETURN(
        entry.path,
        Annotate(NormalizeEntryPath(archive_entry_pathname(e)), what));
    entry.type = TypeOf(e);
    entry.mode = archive_entry_perm(e);
    entry.uid = static_cast<uint32_t>(archive_entry_uid(e));
    entry.gid = static_cast<uint32_t>(archive_entry_gid(e));
    if (const char* u = archive_entry_uname(e)) entry.uname = u;
    if (const char* g = archive_entry_gname(e)) entry.gname = g;
    entry.mtime = archive_entry_mtime(e);
    if (entry.type == FileEntry::Type::kHardlink) {
      ASSIGN_OR_RETURN(
          entry.link_target,
          Annotate(NormalizeEntryPath(archive_entry_hardlink(e)),
                   absl::StrCat(what, ": hard link ", entry.path)));
    } else if (entry.type == FileEntry::Type::kSymlink) {
      entry.link_target = archive_entry_symlink(e);
    } else if (entry.type == FileEntry::Type::kCharDevice ||
               entry.type == FileEntry::Type::kBlockDevice) {
      entry.rdev_major = archive_entry_rdevmajor(e);
      entry.rdev_minor = archive_entry_rdevminor(e);
    }
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      entry.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    data.clear();
    if (entry.type == FileEntry::Type::kFile) {
      data.resize(static_cast<size_t>(archive_entry_size(e)));
      la_ssize_t n = archive_read_data(a, data.data(), data.size());
      if (n < 0 || static_cast<size_t>(n) != data.size()) {
        return ArchiveError(a, absl::StrCat(what, ": ", entry.path));
      }
    }
    RETURN_IF_ERROR(visit(entry, data));
  }
  if (rc != ARCHIVE_EOF) return ArchiveError(a, what);
  return absl::OkStatus();
}

}  // namespace fcvm::rootfs
