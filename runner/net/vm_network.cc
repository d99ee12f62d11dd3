#include "runner/net/vm_network.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/state/process.h"
#include "runner/net/subnet.h"

namespace fcvm::runner::net {
namespace {

// SIGKILL to `pid` if it is still the process started at `ticks`, then a
// moment for it to go (it is not our child: no reaping).
void EndProcess(pid_t pid, uint64_t ticks) {
  if (pid <= 0 || !SameProcessAlive(pid, ticks)) return;
  kill(pid, SIGKILL);
  for (int i = 0; i < 100 && SameProcessAlive(pid, ticks); ++i) usleep(10000);
}

}  // namespace

std::string SubnetPool() {
  const char* pool = std::getenv("FCVM_SUBNET_POOL");
  return pool && *pool ? pool : "10.213.0.0/16";
}

absl::Status AllocateTapNetwork(StateStore& store, const std::string& mode,
                                VmState& state) {
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
  net.set_mode(mode);
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
  return absl::OkStatus();
}

absl::Status CreateTapAndRules(const VmState& state) {
  const NetworkState& net = state.network();
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

absl::Status SetUpTapNetwork(StateStore& store, VmState& state) {
  RETURN_IF_ERROR(AllocateTapNetwork(store, "tap", state));
  return CreateTapAndRules(state);
}

absl::Status TearDownNetwork(const VmState& state) {
  const NetworkState& net = state.network();
  if (net.mode() == "pasta" || net.mode() == "slirp4netns") {
    // The helper first: it would otherwise notice the namespace going.
    EndProcess(net.helper_pid(), net.helper_start_ticks());
    EndProcess(net.holder_pid(), net.holder_start_ticks());
    return absl::OkStatus();
  }
  if (net.mode() != "tap") return absl::OkStatus();
  absl::Status rules = RemoveVmRules(state.name());
  absl::Status tap = state.network().tap().empty()
                         ? absl::OkStatus()
                         : DeleteTap(state.network().tap());
  return rules.ok() ? tap : rules;
}

}  // namespace fcvm::runner::net
