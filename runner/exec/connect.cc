#include "runner/exec/connect.h"

#include "absl/strings/str_cat.h"
#include "runner/state/lease.h"

namespace fcvm::runner::exec {

absl::StatusOr<std::unique_ptr<HubClient>> ConnectToVm(
    const StateStore& store, const std::string& name) {
  absl::StatusOr<VmState> state = store.Read(name);
  if (!state.ok()) return state.status();
  // The lease, not the socket file, says whether the VM's owner lives: a
  // socket left by a supervisor that was killed would only refuse.
  if (!Lease::Held(state->dir())) {
    return absl::FailedPreconditionError(
        absl::StrCat("VM '", name, "' is not running"));
  }
  return HubClient::Connect(state->dir(), name);
}

}  // namespace fcvm::runner::exec
