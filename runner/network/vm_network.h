#ifndef FCVM_RUNNER_NETWORK_VM_NETWORK_H_
#define FCVM_RUNNER_NETWORK_VM_NETWORK_H_

// A VM's privileged network, set up and torn down as one: a /30 from the
// pool (never one another VM in the store holds), a TAP, the nftables rules
// for its published ports and egress.

#include <string>

#include "absl/status/status.h"
#include "runner/state_store.h"

namespace fcvm::runner::network {

// $FCVM_SUBNET_POOL, else 10.213.0.0/16.
std::string SubnetPool();

// Fills state.network (mode "tap", subnet, addresses, MAC, TAP name) and
// creates the TAP and the rules. On error, whatever was created is removed.
absl::Status SetUpTapNetwork(StateStore& store, VmState& state);

// Removes the VM's rules and TAP (each step even if another fails; the
// first error is returned). Nothing to do for other modes.
absl::Status TearDownNetwork(const VmState& state);

}  // namespace fcvm::runner::network

#endif  // FCVM_RUNNER_NETWORK_VM_NETWORK_H_
