#ifndef FCVM_RUNNER_VM_GC_H_
#define FCVM_RUNNER_VM_GC_H_

// `fcvm gc`: what dead owners left in this state store. Under the store's
// lock (so it never races a run choosing a subnet, or another gc), each
// VM's lease is asked: a VM whose owner lives (running, or still being
// created) is left alone; one whose owner died while its state said it
// lived is cleaned up (cleanup.h) and removed, as `rm` would; one that
// ended is left for `rm`; one whose state cannot be read is moved to
// quarantine, disk and all, never deleted. Nothing outside this store's
// VMs is looked at: other stores' (other users', CI's) TAPs and tables
// are theirs.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

enum class GcAction {
  kLeave,           // Its owner lives.
  kLeaveForRm,      // It ended; `fcvm rm` removes it.
  kCleanAndRemove,  // Its owner died while it ran.
  kQuarantine,      // Its state cannot be read.
};

// The decision for one entry, given whether its lease was free. Pure.
GcAction DecideGc(const StoreEntry& entry, bool owner_alive);

struct GcReport {
  std::vector<std::string> done;    // One line per VM acted on.
  std::vector<std::string> errors;  // One line per VM that could not be.
};

[[nodiscard]] absl::StatusOr<GcReport> CollectGarbage(StateStore& store);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_GC_H_
