#ifndef FCVM_RUNNER_CACHE_FILL_H_
#define FCVM_RUNNER_CACHE_FILL_H_

// `fcvm cache fill VM` (hidden: the VM's supervisor starts it once the
// container is first ready): the startup-cache entry for the VM's key, a
// snapshot taken from the running VM (paused for the snapshot, then
// resumed: snapshot/create.h), unless another process holds the key's
// fill lock or the entry exists. Then the cache is pruned to its limit,
// the new entry kept.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runner/cache/startup_cache.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

// What was done, in one line ("stored ... in 0.4 s (VM paused 12 ms)",
// "another run is storing it", "already cached").
[[nodiscard]] absl::StatusOr<std::string> FillCache(const StateStore& vms,
                                                    StartupCache& cache,
                                                    const std::string& vm,
                                                    uint64_t max_bytes);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CACHE_FILL_H_
