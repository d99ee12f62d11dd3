#ifndef FCVM_RUNNER_CACHE_STARTUP_CACHE_H_
#define FCVM_RUNNER_CACHE_STARTUP_CACHE_H_

// The startup-snapshot cache on disk: <state root>/cache/<key>/ is a
// snapshot (snapshot_store.h: made private, published by rename, never
// changed) of a VM taken once its container was ready, under its cache key
// (key.h); its manifest holds the key's parts. <cache>/<key>.lock is the
// key's fill lock: the one process storing that key holds it (flock), so
// concurrent first runs store one snapshot, and none waits for another;
// lock files stay (unlinking a lock another process may be opening would
// let two holders in): one empty file per key ever stored.
// <cache>/<key>.used is touched at every restore: least recently used
// entries go first when the cache is pruned to its size limit. An entry in
// use (a live VM restored from it) is never pruned.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

// --cache_max_bytes's default: a few dozen entries of a 512 MiB VM.
inline constexpr uint64_t kDefaultCacheMaxBytes = uint64_t{8} << 30;

struct CacheEntry {
  std::string key;
  std::string dir;
  absl::StatusOr<SnapshotManifest> manifest;
  uint64_t bytes = 0;              // On disk (holes not counted).
  int64_t last_used_unix_ms = 0;   // Its last restore, else its creation.
  std::vector<std::string> users;  // Live VMs restored from it.
};

struct PruneReport {
  std::vector<std::string> removed;  // Keys.
  std::vector<std::string> in_use;   // Over the limit but kept: in use.
  uint64_t bytes_before = 0, bytes_after = 0;
};

class StartupCache {
 public:
  explicit StartupCache(std::string state_root);

  const std::string& dir() const { return dir_; }
  // The entries as snapshots, tagged by key.
  SnapshotStore& snapshots() { return snapshots_; }
  const SnapshotStore& snapshots() const { return snapshots_; }

  // An input file's sha256, hashed once per version of it (digests.json).
  [[nodiscard]] absl::StatusOr<std::string> Digest(const std::string& role,
                                                   const std::string& path);

  // The entry's manifest; NotFound when the key has none.
  [[nodiscard]] absl::StatusOr<SnapshotManifest> Lookup(
      const std::string& key) const;
  // Records a restore (for least-recently-used pruning).
  void Touch(const std::string& key);

  // The key's fill lock, taken without waiting: nullopt while another
  // process holds it.
  [[nodiscard]] absl::StatusOr<std::optional<UniqueFd>> TryLock(
      const std::string& key);

  [[nodiscard]] absl::StatusOr<std::vector<CacheEntry>> List(
      const StateStore& vms) const;
  // Refused (naming the VMs) while a live VM was restored from it, unless
  // `force` (those VMs run on: their memory is mapped already, their disks
  // are copies). A missing key is NotFound.
  [[nodiscard]] absl::Status Remove(const StateStore& vms,
                                    const std::string& key, bool force);
  // Least recently used first, until the entries take at most
  // `max_bytes`; `keep` is never removed (the entry just stored).
  [[nodiscard]] absl::StatusOr<PruneReport> Prune(const StateStore& vms,
                                                  uint64_t max_bytes,
                                                  const std::string& keep = "");

 private:
  std::string root_;
  std::string dir_;
  SnapshotStore snapshots_;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CACHE_STARTUP_CACHE_H_
