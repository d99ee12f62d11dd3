#ifndef FCVM_RUNNER_SNAPSHOT_REMOVE_H_
#define FCVM_RUNNER_SNAPSHOT_REMOVE_H_

// `fcvm snapshot rm TAG`: refused while clones restored from it run (they
// map its memory file and were made from its disk), naming them; with
// force they are stopped first.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

// The VMs restored from `tag` whose owner lives, by name.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> LiveClones(
    const StateStore& store, const std::string& tag);

[[nodiscard]] absl::Status RemoveSnapshot(StateStore& store,
                                          SnapshotStore& snapshots,
                                          const std::string& tag, bool force);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_REMOVE_H_
