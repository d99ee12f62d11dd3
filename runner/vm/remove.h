#ifndef FCVM_RUNNER_VM_REMOVE_H_
#define FCVM_RUNNER_VM_REMOVE_H_

// `fcvm rm`: removes a VM that is not running (its directory: writable
// disk, sockets, logs), holding its lease so nothing else acts on it
// meanwhile; `force` stops a running one first. A VM whose state cannot be
// read is moved to quarantine instead: nothing says whether a VMM still
// uses its disk.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

struct RemoveResult {
  bool stopped = false;     // It was running (force).
  std::string quarantined;  // Where an unreadable VM went; empty if removed.
};

[[nodiscard]] absl::StatusOr<RemoveResult> RemoveVm(
    StateStore& store, const std::string& name, bool force,
    absl::Duration stop_timeout = absl::Seconds(60));

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_REMOVE_H_
