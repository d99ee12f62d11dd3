#ifndef FCVM_RUNNER_NET_NFT_H_
#define FCVM_RUNNER_NET_NFT_H_

// fcvm's nftables rules: one table per VM, `ip fcvm-<VM id>`, holding the
// VM's NAT chains and rules. It is created with everything in it as one
// batch (all or nothing) and deleted whole: nothing is ever listed, parsed
// or picked out by comment, and no VM's teardown (or any store's gc) can
// touch another VM's rules. Through libnftables, the library nft itself
// uses.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner::net {

// "fcvm-" + the VM's id (16 hex digits).
std::string VmTableName(const std::string& vm_id);

struct VmRules {
  std::string table;     // VmTableName(id).
  std::string tap;       // The VM's TAP.
  std::string subnet;    // Its /30, e.g. "10.213.0.4/30".
  std::string guest_ip;  // e.g. "10.213.0.6".
  std::vector<PublishedPort> ports;
};

// The batch that creates the VM's table: DNAT of each published port, for
// traffic from elsewhere (prerouting) and from this host (output), to the
// guest; masquerade of the VM's egress and of localhost-sourced traffic
// into its TAP. Fails if the table exists already (a VM id is unique).
std::string CreateTableCommands(const VmRules& rules);

// The batch that deletes `table`, and succeeds when there is none (it is
// declared first, which is a no-op for an existing table).
std::string DeleteTableCommands(const std::string& table);

// Applies `commands` as one batch; errors quote nft's words and the batch.
[[nodiscard]] absl::Status RunNft(const std::string& commands);

[[nodiscard]] absl::Status CreateVmTable(const VmRules& rules);
// OK when the table is not there.
[[nodiscard]] absl::Status DeleteVmTable(const std::string& table);

// Whether libnftables can make a table here, asked with a dry run (nothing
// is applied): what TAP networking needs, checked without the nft binary,
// which fcvm never runs.
[[nodiscard]] absl::Status CheckNftables();

// The table as nft prints it (tests, diagnostics); NotFound-like error
// when absent.
[[nodiscard]] absl::StatusOr<std::string> ListTable(const std::string& table);

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_NFT_H_
