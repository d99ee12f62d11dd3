#include "runner/cache/startup_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cache/cache.pb.h"
#include "runner/snapshot/machine.h"
#include "runner/vm/listing.h"

namespace fcvm::runner {
namespace {

constexpr char kDigestsFile[] = "digests.json";

// Bytes on disk under `dir` (st_blocks: a sparse memory file counts what
// it holds).
uint64_t AllocatedBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

int64_t MtimeMs(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
}

}  // namespace

StartupCache::StartupCache(std::string state_root)
    : root_(std::move(state_root)),
      dir_(absl::StrCat(root_, "/cache")),
      snapshots_(root_, dir_) {}

[[nodiscard]] absl::StatusOr<std::string> StartupCache::Digest(
    const std::string& role, const std::string& path) {
  const std::string memo_path = absl::StrCat(dir_, "/", kDigestsFile);
  DigestMemo memo;
  if (absl::StatusOr<std::string> text = ReadFile(memo_path); text.ok()) {
    // A damaged memo only costs hashing again.
    if (!google::protobuf::util::JsonStringToMessage(*text, &memo).ok()) {
      memo.Clear();
    }
  }
  std::vector<InputFile> known(memo.files().begin(), memo.files().end());
  ASSIGN_OR_RETURN(InputFile input, DescribeInput(role, path, known));
  for (const InputFile& file : known) {
    if (file.path() == input.path() && file.size() == input.size() &&
        file.mtime_ns() == input.mtime_ns() &&
        file.sha256() == input.sha256()) {
      return input.sha256();
    }
  }
  // New: remembered (another path's record for this path replaced). Runs
  // racing here lose an update at worst, never a wrong digest.
  DigestMemo updated;
  for (const InputFile& file : known) {
    if (file.path() != input.path()) *updated.add_files() = file;
  }
  *updated.add_files() = input;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(updated, &json);
  if (EnsurePrivateDir(root_).ok() && EnsurePrivateDir(dir_).ok()) {
    (void)WriteFileAtomically(memo_path, json, 0600, Durability::kUnsynced);
  }
  return input.sha256();
}

[[nodiscard]] absl::StatusOr<SnapshotManifest> StartupCache::Lookup(
    const std::string& key) const {
  if (access(snapshots_.TagDir(key).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no cache entry ", key));
  }
  return snapshots_.Read(key);
}

void StartupCache::Touch(const std::string& key) {
  const std::string used = absl::StrCat(dir_, "/", key, ".used");
  UniqueFd fd(open(used.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (fd.valid()) (void)futimens(fd.get(), nullptr);
}

[[nodiscard]] absl::StatusOr<std::optional<UniqueFd>> StartupCache::TryLock(
    const std::string& key) {
  RETURN_IF_ERROR(EnsurePrivateDir(root_));
  RETURN_IF_ERROR(EnsurePrivateDir(dir_));
  const std::string path = absl::StrCat(dir_, "/", key, ".lock");
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(absl::StrCat("opening ", path));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<UniqueFd>();
    return ErrnoStatus(absl::StrCat("locking ", path));
  }
  return std::optional<UniqueFd>(std::move(fd));
}

[[nodiscard]] absl::StatusOr<std::vector<CacheEntry>> StartupCache::List(
    const StateStore& vms) const {
  std::vector<CacheEntry> entries;
  if (access(dir_.c_str(), F_OK) != 0) return entries;
  ASSIGN_OR_RETURN(std::vector<SnapshotEntry> snapshots, snapshots_.List());
  ASSIGN_OR_RETURN(std::vector<ListedVm> listed, ListVms(vms));
  for (SnapshotEntry& snapshot : snapshots) {
    CacheEntry entry;
    entry.key = snapshot.tag;
    entry.dir = snapshot.dir;
    entry.bytes = AllocatedBytes(snapshot.dir);
    entry.last_used_unix_ms =
        std::max(MtimeMs(absl::StrCat(dir_, "/", snapshot.tag, ".used")),
                 snapshot.manifest.ok() ? snapshot.manifest->created_unix_ms()
                                        : MtimeMs(snapshot.dir));
    entry.manifest = std::move(snapshot.manifest);
    for (const ListedVm& vm : listed) {
      if (vm.owner_alive && vm.entry.state.ok() &&
          vm.entry.state->restored_from().cache_key() == entry.key) {
        entry.users.push_back(vm.entry.name);
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

[[nodiscard]] absl::Status StartupCache::Remove(const StateStore& vms,
                                                const std::string& key,
                                                bool force) {
  ASSIGN_OR_RETURN(std::vector<CacheEntry> entries, List(vms));
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const CacheEntry& e) { return e.key == key; });
  if (it == entries.end()) {
    return absl::NotFoundError(
        absl::StrCat("no cache entry '", key, "' (fcvm cache ls)"));
  }
  if (!it->users.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cache entry ", key, " is in use by ", absl::StrJoin(it->users, ", "),
        " (stop them, or cache rm -f: they run on)"));
  }
  RETURN_IF_ERROR(snapshots_.Remove(key));
  (void)unlink(absl::StrCat(dir_, "/", key, ".used").c_str());
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<PruneReport> StartupCache::Prune(
    const StateStore& vms, uint64_t max_bytes, const std::string& keep) {
  ASSIGN_OR_RETURN(std::vector<CacheEntry> entries, List(vms));
  PruneReport report;
  for (const CacheEntry& entry : entries) report.bytes_before += entry.bytes;
  report.bytes_after = report.bytes_before;
  std::sort(entries.begin(), entries.end(),
            [](const CacheEntry& a, const CacheEntry& b) {
              return a.last_used_unix_ms < b.last_used_unix_ms;
            });
  for (const CacheEntry& entry : entries) {
    if (report.bytes_after <= max_bytes) break;
    if (entry.key == keep) continue;
    if (!entry.users.empty()) {
      report.in_use.push_back(entry.key);
      continue;
    }
    RETURN_IF_ERROR(Remove(vms, entry.key, /*force=*/false));
    report.removed.push_back(entry.key);
    report.bytes_after -= entry.bytes;
  }
  return report;
}

}  // namespace fcvm::runner
