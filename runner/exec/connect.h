#ifndef FCVM_RUNNER_EXEC_CONNECT_H_
#define FCVM_RUNNER_EXEC_CONNECT_H_

// The control channel of a VM by its name: what `fcvm exec` and `fcvm cp`
// start with.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runner/exec/client.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::exec {

// Connects to the hub of the running VM `name` in `store`. Errors name the
// VM: no such VM, not running (its lease is free), no control channel.
[[nodiscard]] absl::StatusOr<std::unique_ptr<HubClient>> ConnectToVm(
    const StateStore& store, const std::string& name);

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_CONNECT_H_
