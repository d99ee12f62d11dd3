#ifndef FCVM_RUNNER_VM_LISTING_H_
#define FCVM_RUNNER_VM_LISTING_H_

// `fcvm ls`: every VM with whether its owner lives (its lease, asked
// without waiting), and the status a user reads from both.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

struct ListedVm {
  StoreEntry entry;
  bool owner_alive = false;
};

[[nodiscard]] absl::StatusOr<std::vector<ListedVm>> ListVms(
    const StateStore& store);

// "running", "paused", "exited (0)", "creating", "dead (fcvm gc)",
// "unreadable (fcvm gc)". Pure.
std::string StatusText(const ListedVm& vm);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_LISTING_H_
