#ifndef FCVM_RUNNER_VM_STOP_H_
#define FCVM_RUNNER_VM_STOP_H_

// `fcvm stop`: asks the VM's owner to stop it (SIGTERM through a pidfd:
// the agent stops the container, syncs, powers off), waits for the owner
// to end (its pidfd), past `timeout` kills it, then takes the lease and
// cleans up whatever was left (a VMM without its supervisor).

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/state/state_store.h"
#include "runner/vm/cleanup.h"

namespace fcvm::runner {

struct StopResult {
  bool was_running = false;  // An owner was alive.
  bool killed = false;       // It did not end within the timeout.
  CleanupReport cleanup;     // What a dead owner had left.
};

[[nodiscard]] absl::StatusOr<StopResult> StopVm(StateStore& store,
                                                const std::string& name,
                                                absl::Duration timeout);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_STOP_H_
