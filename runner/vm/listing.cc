#include "runner/vm/listing.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/state/lease.h"
#include "runner/vm/cleanup.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<std::vector<ListedVm>> ListVms(
    const StateStore& store) {
  ASSIGN_OR_RETURN(std::vector<StoreEntry> entries, store.List());
  std::vector<ListedVm> vms;
  vms.reserve(entries.size());
  for (StoreEntry& entry : entries) {
    const bool alive = Lease::Held(entry.dir);
    vms.push_back({std::move(entry), alive});
  }
  return vms;
}

std::string StatusText(const ListedVm& vm) {
  if (!vm.entry.state.ok()) {
    return vm.owner_alive ? "creating" : "unreadable (fcvm gc)";
  }
  const VmState& s = *vm.entry.state;
  if (LivePhase(s.phase()) && !vm.owner_alive) return "dead (fcvm gc)";
  std::string phase = absl::AsciiStrToLower(VmState::Phase_Name(s.phase()));
  if (s.phase() == VmState::EXITED)
    absl::StrAppend(&phase, " (", s.exit_code(), ")");
  return phase;
}

}  // namespace fcvm::runner
