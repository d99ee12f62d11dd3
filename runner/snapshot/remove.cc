#include "runner/snapshot/remove.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "runner/snapshot/memory_server.h"
#include "runner/vm/listing.h"
#include "runner/vm/stop.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<std::vector<std::string>> LiveClones(
    const StateStore& store, const std::string& tag) {
  ASSIGN_OR_RETURN(std::vector<ListedVm> vms, ListVms(store));
  std::vector<std::string> names;
  for (const ListedVm& vm : vms) {
    if (vm.owner_alive && vm.entry.state.ok() &&
        vm.entry.state->restored_from().snapshot() == tag) {
      names.push_back(vm.entry.name);
    }
  }
  return names;
}

[[nodiscard]] absl::Status RemoveSnapshot(StateStore& store,
                                          SnapshotStore& snapshots,
                                          const std::string& tag, bool force) {
  // A damaged manifest is no reason to keep the snapshot: only a missing
  // one is an error.
  if (absl::Status read = snapshots.Read(tag).status();
      absl::IsNotFound(read) || absl::IsInvalidArgument(read)) {
    return read;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> clones, LiveClones(store, tag));
  if (!clones.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot '", tag, "' is in use by ", absl::StrJoin(clones, ", "),
        " (stop them, or snapshot rm -f)"));
  }
  for (const std::string& clone : clones) {
    RETURN_IF_ERROR(StopVm(store, clone, absl::Seconds(30)).status());
  }
  RETURN_IF_ERROR(snapshots.Remove(tag));
  // Its memory server's place (lease, log, a dead server's socket).
  return RemoveMemoryServerPlace(store.root(), tag);
}

}  // namespace fcvm::runner
