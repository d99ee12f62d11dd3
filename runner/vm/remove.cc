#include "runner/vm/remove.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/state/lease.h"
#include "runner/vm/cleanup.h"
#include "runner/vm/stop.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<RemoveResult> RemoveVm(
    StateStore& store, const std::string& name, bool force,
    absl::Duration stop_timeout) {
  RETURN_IF_ERROR(ValidateVmName(name));
  const std::string dir = store.VmDir(name);
  absl::StatusOr<VmState> state = store.Read(name);
  if (absl::IsNotFound(state.status())) return state.status();
  RemoveResult result;
  if (Lease::Held(dir)) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "VM '", name, "' is running: fcvm stop it first, or fcvm rm -f"));
    }
    if (!state.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "VM '", name, "' has an owner but its state cannot be read (",
          state.status().message(), "); stop its supervisor yourself"));
    }
    ASSIGN_OR_RETURN(StopResult stopped, StopVm(store, name, stop_timeout));
    result.stopped = stopped.was_running;
    // A VM run with --rm: its supervisor removed it as it ended.
    if (access(dir.c_str(), F_OK) != 0 && errno == ENOENT) return result;
  }
  absl::StatusOr<std::optional<Lease>> taken = Lease::TryTake(dir);
  if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
  if (taken.ok() && !taken->has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("VM '", name, "' started running again"));
  }
  if (!taken.ok()) {
    // No lease file: a directory this fcvm did not make. Account for
    // nothing, delete nothing.
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", name, "' (", dir,
        ") has no lease file: not removed; look at it and delete it yourself"));
  }
  const Lease& lease = **taken;
  if (!state.ok()) {
    ASSIGN_OR_RETURN(result.quarantined, store.Quarantine(name, lease));
    return result;
  }
  RETURN_IF_ERROR(CleanUpAfterOwner(store, *state, lease).status());
  RETURN_IF_ERROR(store.Remove(name, lease));
  return result;
}

}  // namespace fcvm::runner
