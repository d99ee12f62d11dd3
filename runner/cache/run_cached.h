#ifndef FCVM_RUNNER_CACHE_RUN_CACHED_H_
#define FCVM_RUNNER_CACHE_RUN_CACHED_H_

// `fcvm run` through the startup-snapshot cache. The run's key (key.h) is
// looked up: on a hit the VM is restored from the entry as a clone with
// the run's own identity (name, hostname, published ports, machine-id,
// entropy, clock); on a miss it boots cold and its supervisor stores the
// entry once the container is ready (fill.h). An entry that cannot be
// restored (the VMM or an input changed, a file damaged) is removed and
// the run boots cold, saying so in one line. Every run says which path it
// took on stderr ("cold boot ...", "cached <key> ...").

#include <string>
#include <vector>

#include "runner/state/state_store.h"
#include "runner/vm/launch.h"

namespace fcvm::runner {

struct CacheOptions {
  bool no_cache = false;  // --no-cache: boot cold, store nothing.
  std::vector<std::string> holder_argv;
  // This program and its --state_dir (for `cache fill`).
  std::vector<std::string> fcvm_argv;
};

// The exit code as RunVm's.
int RunCached(StateStore& store, Launch launch, const CacheOptions& options);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CACHE_RUN_CACHED_H_
