#ifndef FCVM_RUNNER_NET_VM_NETWORK_H_
#define FCVM_RUNNER_NET_VM_NETWORK_H_

// A VM's privileged network, set up and torn down as one: a /30 from the
// pool (never one another VM in the store holds), a TAP, the nftables rules
// for its published ports and egress.

#include <string>

#include "absl/status/status.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::net {

// $FCVM_SUBNET_POOL, else 10.213.0.0/16.
std::string SubnetPool();

// Fills state.network (`mode`, subnet, addresses, MAC, TAP name) and
// records it in the store; creates nothing.
absl::Status AllocateTapNetwork(StateStore& store, const std::string& mode,
                                VmState& state);

// Creates the TAP and the rules state.network names, in the calling
// process's network namespace. On error, whatever was created is removed.
absl::Status CreateTapAndRules(const VmState& state);

// Privileged mode: AllocateTapNetwork("tap"), then CreateTapAndRules.
absl::Status SetUpTapNetwork(StateStore& store, VmState& state);

// Removes the VM's rules and TAP (mode "tap"), or ends the processes
// holding and serving its namespace (rootless modes; the TAP and rules go
// with the namespace). Each step runs even if another fails; the first
// error is returned. Nothing to do for other modes.
absl::Status TearDownNetwork(const VmState& state);

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_VM_NETWORK_H_
