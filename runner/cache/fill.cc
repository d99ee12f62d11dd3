#include "runner/cache/fill.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runner/cache/key.h"
#include "runner/snapshot/create.h"
#include "runner/snapshot/machine.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<std::string> FillCache(const StateStore& vms,
                                                    StartupCache& cache,
                                                    const std::string& vm,
                                                    uint64_t max_bytes) {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(VmState state, vms.Read(vm));
  const std::string& key = state.cache().key();
  if (key.empty() || state.cache().hit()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", vm, "' asks for no startup-cache entry (it ran ",
        key.empty() ? "with --no-cache or uncacheable" : "from the cache",
        ")"));
  }
  ASSIGN_OR_RETURN(std::optional<UniqueFd> lock, cache.TryLock(key));
  if (!lock.has_value()) {
    return absl::StrCat("cache entry ", key, ": another run is storing it");
  }
  if (cache.Lookup(key).ok())
    return absl::StrCat("cache entry ", key, ": already stored");
  // The key again, from the VM's state: what the entry records (and a
  // check that the inputs did not change since the run began).
  ASSIGN_OR_RETURN(std::string version, VmmVersion(state.vmm_binary()));
  ASSIGN_OR_RETURN(CacheKey computed,
                   ComputeCacheKey(state, version,
                                   [&cache](const std::string& role,
                                            const std::string& path) {
                                     return cache.Digest(role, path);
                                   }));
  if (computed.key() != key) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache entry ", key, ": VM '", vm,
                     "''s inputs changed since it started (now ",
                     computed.key(), "): not stored"));
  }
  SnapshotRequest request;
  request.vm = vm;
  request.tag = key;
  request.cache_key = computed;
  ASSIGN_OR_RETURN(SnapshotManifest made,
                   CreateSnapshot(vms, cache.snapshots(), request));
  std::string line = absl::StrFormat(
      "stored startup-cache entry %s in %.2f s (VM paused %.1f ms)", key,
      absl::ToDoubleSeconds(absl::Now() - start),
      made.taken().paused_us() / 1e3);
  absl::StatusOr<PruneReport> pruned = cache.Prune(vms, max_bytes, key);
  if (!pruned.ok()) {
    absl::StrAppend(&line, "; pruning: ", pruned.status().message());
  } else if (!pruned->removed.empty()) {
    absl::StrAppend(&line, "; pruned ", absl::StrJoin(pruned->removed, ", "),
                    " (least recently used, over ", max_bytes, " bytes)");
  }
  return line;
}

}  // namespace fcvm::runner
