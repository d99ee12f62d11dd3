#include "runner/snapshot/snapshot_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {
namespace {

constexpr char kPartialPrefix[] = ".partial-";
constexpr char kRemovingPrefix[] = ".removing-";

bool OlderThanAnHour(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && time(nullptr) - st.st_mtime > 3600;
}

}  // namespace

[[nodiscard]] absl::Status ValidateTag(const std::string& tag) {
  if (!ValidateVmName(tag).ok() || tag.size() > 36) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad snapshot tag '", tag,
        "': use 1 to 36 of a-z, 0-9 and '-', starting with a letter or digit "
        "and not ending with '-' (clones are named <tag>-<n>)"));
  }
  return absl::OkStatus();
}

SnapshotStore::SnapshotStore(std::string state_root)
    : root_(std::move(state_root)), dir_(absl::StrCat(root_, "/snapshots")) {}

SnapshotStore::SnapshotStore(std::string state_root, std::string dir)
    : root_(std::move(state_root)), dir_(std::move(dir)) {}

std::string SnapshotStore::TagDir(const std::string& tag) const {
  return absl::StrCat(dir_, "/", tag);
}

[[nodiscard]] absl::StatusOr<PendingSnapshot> SnapshotStore::Begin(
    const std::string& tag) {
  RETURN_IF_ERROR(ValidateTag(tag));
  RETURN_IF_ERROR(EnsurePrivateDir(root_));
  RETURN_IF_ERROR(EnsurePrivateDir(dir_));
  if (access(TagDir(tag).c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot '", tag,
                                                 "' exists (fcvm snapshot rm ",
                                                 tag, ", or another --tag)"));
  }
  char random[6];
  if (getrandom(random, sizeof(random), 0) != sizeof(random)) {
    return ErrnoStatus("getrandom for a snapshot directory");
  }
  const std::string dir =
      absl::StrCat(dir_, "/", kPartialPrefix, tag, "-",
                   absl::BytesToHexString(absl::string_view(random, 6)));
  if (mkdir(dir.c_str(), 0700) != 0) {
    return ErrnoStatus(absl::StrCat("mkdir ", dir));
  }
  absl::StatusOr<Lease> lease = Lease::Create(dir);
  if (!lease.ok()) {
    (void)RemoveTree(dir);
    return lease.status();
  }
  return PendingSnapshot{tag, dir, std::move(*lease)};
}

[[nodiscard]] absl::Status SnapshotStore::Publish(
    PendingSnapshot& pending, const SnapshotManifest& manifest) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(manifest, &json, options)
           .ok()) {
    return absl::InternalError("the manifest does not print as JSON");
  }
  RETURN_IF_ERROR(WriteFileAtomically(
      absl::StrCat(pending.dir, "/", kManifestFile), json, 0600));
  const std::string to = TagDir(pending.tag);
  if (renameat2(AT_FDCWD, pending.dir.c_str(), AT_FDCWD, to.c_str(),
                RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(
          "snapshot '", pending.tag, "' was made by someone else meanwhile"));
    }
    return ErrnoStatus(absl::StrCat("publishing snapshot ", to));
  }
  pending.dir = to;
  return absl::OkStatus();
}

void SnapshotStore::Abandon(PendingSnapshot& pending) {
  (void)RemoveTree(pending.dir);
}

[[nodiscard]] absl::StatusOr<SnapshotManifest> SnapshotStore::Read(
    const std::string& tag) const {
  RETURN_IF_ERROR(ValidateTag(tag));
  const std::string path = absl::StrCat(TagDir(tag), "/", kManifestFile);
  absl::StatusOr<std::string> json = ReadFile(path);
  if (!json.ok()) {
    if (access(TagDir(tag).c_str(), F_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("no snapshot '", tag, "'"));
    }
    return absl::DataLossError(
        absl::StrCat("snapshot '", tag, "': no readable ", kManifestFile, " (",
                     json.status().message(), ")"));
  }
  SnapshotManifest manifest;
  google::protobuf::util::JsonParseOptions options;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(
          *json, &manifest, options);
      !parsed.ok()) {
    return absl::DataLossError(absl::StrCat(
        "snapshot '", tag, "': ", path, ": ",
        std::string(parsed.message().data(), parsed.message().size())));
  }
  if (manifest.tag() != tag) {
    return absl::DataLossError(absl::StrCat("snapshot '", tag, "': ", path,
                                            " is the manifest of '",
                                            manifest.tag(), "'"));
  }
  return manifest;
}

[[nodiscard]] absl::StatusOr<std::vector<SnapshotEntry>> SnapshotStore::List()
    const {
  std::vector<SnapshotEntry> entries;
  std::error_code error;
  std::filesystem::directory_iterator it(dir_, error);
  if (error) {
    if (error == std::errc::no_such_file_or_directory) return entries;
    return absl::InternalError(
        absl::StrCat("listing ", dir_, ": ", error.message()));
  }
  for (const auto& entry : it) {
    const std::string tag = entry.path().filename().string();
    if (absl::StartsWith(tag, ".") || !entry.is_directory()) continue;
    entries.push_back({tag, TagDir(tag), Read(tag)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const SnapshotEntry& a, const SnapshotEntry& b) {
              return a.tag < b.tag;
            });
  return entries;
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>>
SnapshotStore::Abandoned() const {
  std::vector<std::string> dirs;
  std::error_code error;
  std::filesystem::directory_iterator it(dir_, error);
  if (error) return dirs;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    const std::string dir = entry.path().string();
    if (absl::StartsWith(name, kRemovingPrefix)) {
      dirs.push_back(dir);  // Out of sight already: its removal failed.
      continue;
    }
    if (!absl::StartsWith(name, kPartialPrefix)) continue;
    // Its maker holds the lease while it works. Without a lease file it is
    // either between mkdir and the lease (a maker alive) or half removed
    // by a maker that gave up: the latter once it is an hour old.
    absl::StatusOr<std::optional<Lease>> taken = Lease::TryTake(dir);
    if (taken.ok() && taken->has_value()) {
      dirs.push_back(dir);
    } else if (absl::IsNotFound(taken.status()) && OlderThanAnHour(dir)) {
      dirs.push_back(dir);
    }
  }
  return dirs;
}

[[nodiscard]] absl::Status SnapshotStore::RemoveAbandoned(
    const std::string& dir) {
  const std::string partial = absl::StrCat(dir_, "/", kPartialPrefix);
  const std::string removing = absl::StrCat(dir_, "/", kRemovingPrefix);
  const bool is_partial = absl::StartsWith(dir, partial);
  if ((!is_partial && !absl::StartsWith(dir, removing)) ||
      dir.find('/', dir_.size() + 1) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " is not an unfinished snapshot of ", dir_));
  }
  if (is_partial) {
    // Taken again, so a maker that is in fact alive keeps its directory.
    absl::StatusOr<std::optional<Lease>> lease = Lease::TryTake(dir);
    if (lease.ok() && !lease->has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, ": its maker is alive"));
    }
    if (!lease.ok() &&
        !(absl::IsNotFound(lease.status()) && OlderThanAnHour(dir))) {
      return lease.status();
    }
  }
  return RemoveTree(dir);
}

[[nodiscard]] absl::Status SnapshotStore::Remove(const std::string& tag) {
  RETURN_IF_ERROR(ValidateTag(tag));
  const std::string dir = TagDir(tag);
  if (access(dir.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no snapshot '", tag, "'"));
  }
  // Out of sight first: a clone starting now finds no snapshot rather
  // than half of one.
  char random[6];
  if (getrandom(random, sizeof(random), 0) != sizeof(random)) {
    return ErrnoStatus("getrandom");
  }
  const std::string gone =
      absl::StrCat(dir_, "/", kRemovingPrefix, tag, "-",
                   absl::BytesToHexString(absl::string_view(random, 6)));
  if (rename(dir.c_str(), gone.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("removing snapshot ", dir));
  }
  return RemoveTree(gone);
}

[[nodiscard]] absl::StatusOr<std::string> SnapshotStore::NextTag(
    const std::string& vm) const {
  for (int n = 1; n < 10000; ++n) {
    std::string tag = absl::StrCat(vm.substr(0, 30), "-", n);
    if (access(TagDir(tag).c_str(), F_OK) != 0) return tag;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("VM '", vm, "' has 9999 snapshots: give --tag"));
}

}  // namespace fcvm::runner
