#ifndef FCVM_RUNNER_NET_NFT_H_
#define FCVM_RUNNER_NET_NFT_H_

// fcvm's nftables rules, all in one table of its own (`ip fcvm`), each
// marked with the comment "fcvm:<vm name>" so a VM's rules are found and
// removed together, and leftovers of killed runners are found by gc.
// Through libnftables: a VM's rules go in as one batch (all or none).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/plan.pb.h"

namespace fcvm::runner::net {

inline constexpr char kTable[] = "fcvm";

struct VmRules {
  std::string vm;        // Name: the comment is "fcvm:<vm>".
  std::string tap;       // The VM's TAP.
  std::string subnet;    // Its /30, e.g. "10.213.0.4/30".
  std::string guest_ip;  // e.g. "10.213.0.6".
  std::vector<agent::PortMapping> ports;
};

// The nft commands that add `rules` (table and chains created if missing):
// DNAT of each published port, for traffic from elsewhere (prerouting) and
// from this host (output), to the guest; masquerade of the VM's egress and
// of localhost-sourced traffic into its TAP.
std::string AddRulesCommands(const VmRules& rules);

// Applies `commands` as one batch.
absl::Status RunNft(const std::string& commands);

absl::Status AddVmRules(const VmRules& rules);
// Deletes every rule marked for `vm`; OK when there are none (or no table).
absl::Status RemoveVmRules(const std::string& vm);
// The VMs that have rules in the table.
absl::StatusOr<std::vector<std::string>> VmsWithRules();
// The table as nft prints it (for tests and `fcvm inspect`).
absl::StatusOr<std::string> ListTable();

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_NFT_H_
