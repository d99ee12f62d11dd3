#include "rootfs/archive/apk_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

using Reader = std::unique_ptr<archive, int (*)(archive*)>;

[[nodiscard]] absl::StatusOr<Reader> Open(const std::string& path) {
  Reader a(archive_read_new(), archive_read_free);
  // One tar across all gzip members: apk strips the end-of-archive blocks
  // between segments, and libarchive reads concatenated gzip members.
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", archive_error_string(a.get())));
  }
  return a;
}

// Control entries are top-level names starting with '.'.
bool IsControl(const FileEntry& entry) {
  return absl::StartsWith(entry.path, ".") &&
         entry.path.find('/') == std::string::npos;
}

bool IsScript(const std::string& name) {
  for (const char* script :
       {".pre-install", ".post-install", ".pre-upgrade", ".post-upgrade",
        ".pre-deinstall", ".post-deinstall", ".trigger"}) {
    if (name == script) return true;
  }
  return false;
}

}  // namespace

[[nodiscard]] absl::StatusOr<ApkControl> ReadApkControl(
    const std::string& apk_path) {
  ASSIGN_OR_RETURN(Reader a, Open(apk_path));
  ApkControl control;
  RETURN_IF_ERROR(VisitTarEntries(
      a.get(), apk_path,
      [&](const FileEntry& entry, absl::string_view data) -> absl::Status {
        if (!IsControl(entry)) return absl::OkStatus();
        if (entry.path == ".PKGINFO") control.pkginfo = std::string(data);
        if (IsScript(entry.path)) control.scripts.push_back(entry.path);
        return absl::OkStatus();
      }));
  if (control.pkginfo.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(apk_path, ": no .PKGINFO (not an apk package?)"));
  }
  std::sort(control.scripts.begin(), control.scripts.end());
  return control;
}

[[nodiscard]] absl::Status ReadApkData(
    const std::string& apk_path,
    const std::function<absl::Status(const FileEntry&, absl::string_view data)>&
        visit) {
  ASSIGN_OR_RETURN(Reader a, Open(apk_path));
  return VisitTarEntries(
      a.get(), apk_path,
      [&](const FileEntry& entry, absl::string_view data) -> absl::Status {
        if (IsControl(entry)) return absl::OkStatus();
        return visit(entry, data);
      });
}

[[nodiscard]] absl::StatusOr<std::string> ReadApkIndexArchive(
    const std::string& path) {
  ASSIGN_OR_RETURN(Reader a, Open(path));
  std::string text;
  bool found = false;
  RETURN_IF_ERROR(VisitTarEntries(
      a.get(), path,
      [&](const FileEntry& entry, absl::string_view data) -> absl::Status {
        if (entry.path == "APKINDEX") {
          text = std::string(data);
          found = true;
        }
        return absl::OkStatus();
      }));
  if (!found) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no APKINDEX in it"));
  }
  return text;
}

}  // namespace fcvm::rootfs
