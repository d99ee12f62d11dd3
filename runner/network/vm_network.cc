#include "runner/network/vm_network.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/network/nft.h"
#include "runner/network/tap.h"
#include "runner/subnet.h"

namespace fcvm::runner::network {

std::string SubnetPool() {
  const char* pool = std::getenv("FCVM_SUBNET_POOL");
  return pool && *pool ? pool : "10.213.0.0/16";
}

absl::Status SetUpTapNetwork(StateStore& store, VmState& state) {
  ASSIGN_OR_RETURN(Subnet pool, ParseSubnet(SubnetPool()));
  // Allocation and recording happen under the store's lock: two `run`s at
  // once never get the same subnet.
  ASSIGN_OR_RETURN(UniqueFd lock, store.LockRoot());
  ASSIGN_OR_RETURN(std::vector<VmState> all, store.List());
  std::vector<std::string> used;
  for (const VmState& other : all) {
    if (!other.network().subnet().empty())
      used.push_back(other.network().subnet());
  }
  ASSIGN_OR_RETURN(Subnet subnet, AllocateSubnet(pool, used));
  NetworkState& net = *state.mutable_network();
  net.set_mode("tap");
  net.set_tap(TapName(state.id()));
  net.set_subnet(subnet.Cidr());
  net.set_host_ip(subnet.HostIp());
  net.set_guest_ip(subnet.GuestIp());
  net.set_guest_mac(subnet.GuestMac());
  net.set_nft_table(kTable);
  net.set_nft_comment(absl::StrCat("fcvm:", state.name()));
  const NetworkState recorded = net;
  RETURN_IF_ERROR(
      store
          .Update(state.name(),
                  [&](VmState& s) { *s.mutable_network() = recorded; })
          .status());
  lock.reset();

  RETURN_IF_ERROR(CreateTap(net.tap(), absl::StrCat(net.host_ip(), "/30")));
  VmRules rules{state.name(),
                net.tap(),
                net.subnet(),
                net.guest_ip(),
                {state.ports().begin(), state.ports().end()}};
  if (absl::Status added = AddVmRules(rules); !added.ok()) {
    (void)DeleteTap(net.tap());
    return added;
  }
  return absl::OkStatus();
}

absl::Status TearDownNetwork(const VmState& state) {
  if (state.network().mode() != "tap") return absl::OkStatus();
  absl::Status rules = RemoveVmRules(state.name());
  absl::Status tap = state.network().tap().empty()
                         ? absl::OkStatus()
                         : DeleteTap(state.network().tap());
  return rules.ok() ? tap : rules;
}

}  // namespace fcvm::runner::network
