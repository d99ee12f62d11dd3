#include "runner/vm/gc.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/state/lease.h"
#include "runner/vm/cleanup.h"

namespace fcvm::runner {

GcAction DecideGc(const StoreEntry& entry, bool owner_alive) {
  if (owner_alive) return GcAction::kLeave;
  if (!entry.state.ok()) return GcAction::kQuarantine;
  return LivePhase(entry.state->phase()) ? GcAction::kCleanAndRemove
                                         : GcAction::kLeaveForRm;
}

[[nodiscard]] absl::StatusOr<GcReport> CollectGarbage(StateStore& store) {
  ASSIGN_OR_RETURN(UniqueFd locked, store.LockRoot());
  ASSIGN_OR_RETURN(std::vector<StoreEntry> entries, store.List());
  GcReport report;
  for (const StoreEntry& entry : entries) {
    auto error = [&](const absl::Status& status) {
      report.errors.push_back(absl::StrCat(entry.name, ": ", status.message()));
    };
    absl::StatusOr<std::optional<Lease>> lease = Lease::TryTake(entry.dir);
    if (!lease.ok()) {
      // No lease file: not a VM this fcvm made; account for nothing.
      error(lease.status());
      continue;
    }
    const bool owner_alive = !lease->has_value();
    switch (DecideGc(entry, owner_alive)) {
      case GcAction::kLeave:
      case GcAction::kLeaveForRm:
        break;
      case GcAction::kQuarantine: {
        absl::StatusOr<std::string> moved =
            store.Quarantine(entry.name, **lease);
        if (!moved.ok()) {
          error(moved.status());
        } else {
          report.done.push_back(
              absl::StrCat("quarantined ", entry.name, " (",
                           entry.state.status().message(), "): moved to ",
                           *moved, "; delete it once nothing uses its disk"));
        }
        break;
      }
      case GcAction::kCleanAndRemove: {
        absl::StatusOr<CleanupReport> cleaned =
            CleanUpAfterOwner(store, *entry.state, **lease);
        if (!cleaned.ok()) {
          error(cleaned.status());
          break;
        }
        if (absl::Status removed = store.Remove(entry.name, **lease);
            !removed.ok()) {
          error(removed);
          break;
        }
        report.done.push_back(absl::StrCat(
            "removed ", entry.name, ": ",
            cleaned->what.empty() ? "" : absl::StrCat(cleaned->what, ", "),
            "state, disk, sockets and logs (",
            VmState::Phase_Name(entry.state->phase()), ")"));
        break;
      }
    }
  }
  return report;
}

}  // namespace fcvm::runner
