#ifndef FCVM_RUNNER_NET_TAP_NETWORK_H_
#define FCVM_RUNNER_NET_TAP_NETWORK_H_

// A VM behind a TAP: its /30 (subnet.h), TAP (tap.h) and nftables table
// (nft.h), named from the VM's id. The same in privileged mode (on the
// host) and rootless modes (inside the VM's own namespaces).

#include <string>

#include "absl/status/status.h"
#include "runner/net/subnet.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner::net {

inline constexpr char kPasta[] = "pasta";
inline constexpr char kSlirp4netns[] = "slirp4netns";

// Whether network `mode` puts a TAP in front of the VM (and so needs a
// subnet): "tap", "pasta", "slirp4netns".
bool UsesTap(const std::string& mode);

// Fills state.network for a TAP mode from `subnet`: addresses, MAC, TAP
// and table names from state.id(). Pure.
void AssignTapNetwork(const Subnet& subnet, VmState& state);

// Creates the TAP and table state.network names, in the calling process's
// network namespace. On error whatever was created is removed.
[[nodiscard]] absl::Status CreateTapAndTable(const VmState& state);

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_TAP_NETWORK_H_
