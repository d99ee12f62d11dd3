#include "release/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "release/manifest.h"

namespace fcvm::release {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

constexpr size_t kChunk = 1 << 20;

// What goes into the archive for one path.
struct Item {
  bool directory = false;
  std::string source;  // A file on disk, or empty with `data` set.
  std::string data;    // Generated content (MANIFEST.json, SHA256SUMS).
  bool executable = false;
};

[[nodiscard]] absl::Status Check(archive* a, int rc, absl::string_view what) {
  if (rc == ARCHIVE_OK) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ",
                                          archive_error_string(a) != nullptr
                                              ? archive_error_string(a)
                                              : "libarchive error"));
}

// Size, sha256 of a file on disk.
[[nodiscard]] absl::StatusOr<std::pair<uint64_t, std::string>> SizeAndSha256(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return ErrnoStatus(absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  ASSIGN_OR_RETURN(std::string sha256, Sha256File(path));
  return std::make_pair(static_cast<uint64_t>(st.st_size), sha256);
}

[[nodiscard]] absl::Status WriteItem(archive* a, const std::string& path,
                                     const Item& item, int64_t mtime) {
  std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), path.c_str());
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  archive_entry_set_uname(entry.get(), "root");
  archive_entry_set_gname(entry.get(), "root");
  archive_entry_set_mtime(entry.get(), mtime, 0);
  UniqueFd fd;
  uint64_t size = item.data.size();
  if (item.directory) {
    archive_entry_set_filetype(entry.get(), AE_IFDIR);
    archive_entry_set_perm(entry.get(), 0755);
    size = 0;
  } else {
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), item.executable ? 0755 : 0644);
    if (!item.source.empty()) {
      ASSIGN_OR_RETURN(fd, OpenFd(item.source, O_RDONLY | O_CLOEXEC));
      struct stat st;
      if (fstat(fd.get(), &st) != 0) {
        return ErrnoStatus(absl::StrCat("stat ", item.source));
      }
      size = static_cast<uint64_t>(st.st_size);
    }
  }
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
  RETURN_IF_ERROR(Check(a, archive_write_header(a, entry.get()), path));
  if (item.directory) return absl::OkStatus();
  if (item.source.empty()) {
    if (archive_write_data(a, item.data.data(), item.data.size()) !=
        static_cast<la_ssize_t>(item.data.size())) {
      return Check(a, ARCHIVE_FATAL, path);
    }
    return absl::OkStatus();
  }
  std::string buffer(kChunk, '\0');
  uint64_t written = 0;
  while (true) {
    const ssize_t n = RetryEintr(
        [&] { return ::read(fd.get(), buffer.data(), buffer.size()); });
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", item.source));
    if (n == 0) break;
    if (archive_write_data(a, buffer.data(), static_cast<size_t>(n)) != n) {
      return Check(a, ARCHIVE_FATAL, path);
    }
    written += static_cast<uint64_t>(n);
  }
  if (written != size) {
    return absl::DataLossError(
        absl::StrCat(item.source, ": changed size while being packed"));
  }
  return absl::OkStatus();
}

}  // namespace

[[nodiscard]] absl::Status Pack(const PackRequest& request) {
  ReleaseManifest manifest = request.manifest;
  manifest.set_name(ReleaseName(manifest.version(), manifest.arch()));
  manifest.clear_files();
  manifest.clear_inputs();

  // Files by path (the map is the byte order of paths).
  std::map<std::string, Item> items;
  Sums sums;
  for (const PackFile& file : request.files) {
    if (!IsCleanRelativePath(file.path) || file.path == kManifestPath ||
        file.path == kSumsPath) {
      return absl::InvalidArgumentError(
          absl::StrCat("release path '", file.path, "' is not allowed"));
    }
    if (!items.emplace(file.path, Item{false, file.source, "", file.executable})
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat("release path '", file.path, "' given twice"));
    }
  }
  for (const auto& [path, item] : items) {
    ASSIGN_OR_RETURN(auto digest, SizeAndSha256(item.source));
    FileEntry* entry = manifest.add_files();
    entry->set_path(path);
    entry->set_size(digest.first);
    entry->set_mode(item.executable ? "0755" : "0644");
    entry->set_sha256(digest.second);
    sums[path] = digest.second;
  }
  for (const PackInput& input : request.inputs) {
    ASSIGN_OR_RETURN(auto digest, SizeAndSha256(input.source));
    Digest* d = manifest.add_inputs();
    d->set_name(input.name);
    d->set_sha256(digest.second);
  }
  // Every asset role names a file of the release.
  std::vector<std::string> roles = {manifest.kernel(), manifest.rootfs()};
  if (!manifest.kernel_config().empty())
    roles.push_back(manifest.kernel_config());
  for (const ImageAssets& image : manifest.images()) {
    roles.push_back(image.oci());
    if (!image.rootfs().empty()) roles.push_back(image.rootfs());
  }
  for (const std::string& role : roles) {
    if (!items.count(absl::StrCat(kAssetsDir, "/", role))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "asset '", role, "' is not a file under ", kAssetsDir, "/"));
    }
  }

  const std::string json = ManifestJson(manifest);
  items[kManifestPath] = Item{false, "", json, false};
  sums[kManifestPath] = Sha256Hex(json);
  items[kSumsPath] = Item{false, "", SumsText(sums), false};
  // Every parent directory, as an entry of its own.
  std::set<std::string> directories;
  for (const auto& [path, item] : items) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      directories.insert(path.substr(0, slash));
    }
  }
  for (const std::string& directory : directories) {
    items[directory] = Item{true, "", "", false};
  }

  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  archive* w = a.get();
  RETURN_IF_ERROR(Check(w, archive_write_set_format_pax_restricted(w), "tar"));
  RETURN_IF_ERROR(Check(w, archive_write_add_filter_gzip(w), "gzip"));
  // No timestamp in the gzip header; the level is fixed.
  RETURN_IF_ERROR(
      Check(w, archive_write_set_filter_option(w, "gzip", "timestamp", nullptr),
            "gzip:!timestamp"));
  RETURN_IF_ERROR(Check(
      w, archive_write_set_filter_option(w, "gzip", "compression-level", "9"),
      "gzip:compression-level"));
  RETURN_IF_ERROR(
      Check(w, archive_write_set_bytes_in_last_block(w, 1), "tar blocks"));
  RETURN_IF_ERROR(Check(w, archive_write_open_filename(w, request.out.c_str()),
                        request.out));
  const std::string top = manifest.name();
  RETURN_IF_ERROR(WriteItem(w, top, Item{true, "", "", false},
                            manifest.source_date_epoch()));
  for (const auto& [path, item] : items) {
    RETURN_IF_ERROR(WriteItem(w, absl::StrCat(top, "/", path), item,
                              manifest.source_date_epoch()));
  }
  RETURN_IF_ERROR(Check(w, archive_write_close(w), request.out));
  return absl::OkStatus();
}

}  // namespace fcvm::release
