#ifndef FCVM_RUNNER_NET_VM_NETWORK_H_
#define FCVM_RUNNER_NET_VM_NETWORK_H_

// A VM's network, set up and torn down as one by its one owner (the
// supervisor), for every mode:
//   tap          a TAP and the VM's nftables table on the host (root);
//   pasta,       the same TAP and table inside user + network namespaces
//   slirp4netns  of the VM's own, held by `fcvm netns-holder` and linked to
//                the host by that helper (rootless.h);
//   user, none   nothing outside the VMM.
// Whatever SetUp created is removed by TearDown (or the destructor) exactly
// once; after a killed owner, TearDownLeftovers removes what its state
// names.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runner/net/rootless.h"
#include "runner/net/tap_network.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner::net {

// $FCVM_SUBNET_POOL, else 10.213.0.0/16.
std::string SubnetPool();

class VmNetwork {
 public:
  // Sets up the network of `state` (see above). `holder_argv` starts
  // `fcvm netns-holder` (rootless modes), which logs to `dir`/network.log.
  [[nodiscard]] static absl::StatusOr<VmNetwork> SetUp(
      const VmState& state, std::vector<std::string> holder_argv);

  VmNetwork(VmNetwork&& other) noexcept;
  VmNetwork& operator=(VmNetwork&&) = delete;
  ~VmNetwork();

  // The process whose namespaces the VMM must join (rootless), else 0.
  pid_t netns_pid() const;
  // Rootless: the holder and helper, for the state (cleanup after a killed
  // owner). Empty otherwise.
  const std::optional<RootlessNetwork>& rootless() const { return rootless_; }
  // One line for progress ("TAP fc-1234abcd, guest 10.213.0.6").
  std::string Describe() const;

  // Removes everything SetUp made; the second call does nothing. Each step
  // runs even if another fails; the first error is returned.
  [[nodiscard]] absl::Status TearDown();

 private:
  explicit VmNetwork(const VmState& state) : state_(state) {}

  VmState state_;  // network and ports of the VM.
  bool host_tap_ = false;
  std::optional<RootlessNetwork> rootless_;
  bool torn_down_ = false;
};

// After an owner died without tearing down: deletes the TAP and table on
// the host (tap), or ends the helper and holder (rootless: the namespace,
// its TAP and table go with them). Idempotent.
[[nodiscard]] absl::Status TearDownLeftovers(const VmState& state);

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_VM_NETWORK_H_
