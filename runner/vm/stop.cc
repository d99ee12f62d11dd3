#include "runner/vm/stop.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/state/lease.h"
#include "runner/state/process.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<StopResult> StopVm(StateStore& store,
                                                const std::string& name,
                                                absl::Duration timeout) {
  ASSIGN_OR_RETURN(VmState state, store.Read(name));
  StopResult result;
  if (Lease::Held(state.dir())) {
    ASSIGN_OR_RETURN(std::optional<ProcessRef> owner,
                     ProcessRef::Open(state.supervisor_pid(),
                                      state.supervisor_start_ticks()));
    if (!owner.has_value()) {
      // The lease is held, but not by a recorded supervisor: `run` is
      // still creating the VM (disks, volumes) and starts it next.
      return absl::FailedPreconditionError(absl::StrCat(
          "VM '", name, "' is being created; stop it once it runs"));
    }
    result.was_running = true;
    RETURN_IF_ERROR(owner->Signal(SIGTERM));
    if (!owner->WaitForExit(timeout)) {
      result.killed = true;
      RETURN_IF_ERROR(Annotate(owner->Kill(absl::Seconds(10)),
                               absl::StrCat("VM '", name, "'")));
    }
  }
  // The owner is gone (or never was): the lease is ours, and so is what it
  // left behind.
  ASSIGN_OR_RETURN(Lease lease, Lease::Take(state.dir(), 10000));
  ASSIGN_OR_RETURN(state, store.Read(name));
  ASSIGN_OR_RETURN(result.cleanup, CleanUpAfterOwner(store, state, lease));
  return result;
}

}  // namespace fcvm::runner
