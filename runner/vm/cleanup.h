#ifndef FCVM_RUNNER_VM_CLEANUP_H_
#define FCVM_RUNNER_VM_CLEANUP_H_

// What an owner that died (a supervisor killed with SIGKILL, a crashed
// run) left behind, removed by whoever holds the VM's lease now (`stop`,
// `rm`, `gc`): its VMM if it still runs (by pidfd, checked against its
// start time), its network (TAP and table, or the rootless helper and
// holder), its sockets; then the state says so. Nothing that the state
// does not name is touched.

#include <string>

#include "absl/status/statusor.h"
#include "runner/state/lease.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

struct CleanupReport {
  bool ended_vmm = false;  // A VMM was still running and was killed.
  bool network = false;    // A TAP, table or rootless helper was removed.
  // "VMM pid 123, TAP fc-..., table ip fcvm-..." for messages; empty when
  // there was nothing.
  std::string what;
};

// `lease` must be the VM's (its owner is gone). Idempotent: a VM that
// ended cleanly has nothing left, and its state is kept as it is.
[[nodiscard]] absl::StatusOr<CleanupReport> CleanUpAfterOwner(
    StateStore& store, const VmState& state, const Lease& lease);

// Whether `phase` says the VM should have a live owner.
bool LivePhase(VmState::Phase phase);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_CLEANUP_H_
