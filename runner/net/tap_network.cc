#include "runner/net/tap_network.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"

namespace fcvm::runner::net {

bool UsesTap(const std::string& mode) {
  return mode == "tap" || mode == kPasta || mode == kSlirp4netns;
}

void AssignTapNetwork(const Subnet& subnet, VmState& state) {
  NetworkState& net = *state.mutable_network();
  net.set_tap(TapName(state.id()));
  net.set_subnet(subnet.Cidr());
  net.set_host_ip(subnet.HostIp());
  net.set_guest_ip(subnet.GuestIp());
  net.set_guest_mac(subnet.GuestMac());
  net.set_nft_table(VmTableName(state.id()));
}

[[nodiscard]] absl::Status CreateTapAndTable(const VmState& state) {
  const NetworkState& net = state.network();
  RETURN_IF_ERROR(CreateTap(net.tap(), absl::StrCat(net.host_ip(), "/30")));
  VmRules rules{net.nft_table(),
                net.tap(),
                net.subnet(),
                net.guest_ip(),
                {state.ports().begin(), state.ports().end()}};
  if (absl::Status added = CreateVmTable(rules); !added.ok()) {
    (void)DeleteTap(net.tap());
    return added;
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner::net
