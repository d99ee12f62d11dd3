#include "runner/net/vm_network.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/state/process.h"

namespace fcvm::runner::net {

std::string SubnetPool() {
  const char* pool = std::getenv("FCVM_SUBNET_POOL");
  return pool && *pool ? pool : "10.213.0.0/16";
}

[[nodiscard]] absl::StatusOr<VmNetwork> VmNetwork::SetUp(
    const VmState& state, std::vector<std::string> holder_argv) {
  VmNetwork network(state);
  const std::string& mode = state.network().mode();
  if (mode == "tap") {
    RETURN_IF_ERROR(CreateTapAndTable(state));
    network.host_tap_ = true;
  } else if (mode == kPasta || mode == kSlirp4netns) {
    ASSIGN_OR_RETURN(
        RootlessNetwork rootless,
        RootlessNetwork::Start(state, std::move(holder_argv), state.dir()));
    network.rootless_.emplace(std::move(rootless));
  }
  return network;
}

VmNetwork::VmNetwork(VmNetwork&& other) noexcept
    : state_(std::move(other.state_)),
      host_tap_(other.host_tap_),
      rootless_(std::move(other.rootless_)),
      torn_down_(other.torn_down_) {
  other.host_tap_ = false;
  other.rootless_.reset();
  other.torn_down_ = true;
}

VmNetwork::~VmNetwork() { (void)TearDown(); }

pid_t VmNetwork::netns_pid() const {
  return rootless_.has_value() ? rootless_->holder_pid() : 0;
}

std::string VmNetwork::Describe() const {
  const NetworkState& net = state_.network();
  if (rootless_.has_value()) {
    return absl::StrCat(net.mode(), ", pid ", rootless_->helper_pid(),
                        "; namespace uplink ", rootless_->uplink(), ", TAP ",
                        net.tap(), ", guest ", net.guest_ip());
  }
  if (host_tap_) {
    return absl::StrCat("TAP ", net.tap(), " (", net.host_ip(), "), table ip ",
                        net.nft_table(), ", guest ", net.guest_ip());
  }
  return net.mode();
}

[[nodiscard]] absl::Status VmNetwork::TearDown() {
  if (torn_down_) return absl::OkStatus();
  torn_down_ = true;
  absl::Status first = absl::OkStatus();
  if (rootless_.has_value()) {
    // The helper and holder end; the namespace, with its TAP and table,
    // goes once the VMM (the last process in it) has ended too.
    rootless_.reset();
    (void)unlink(absl::StrCat(state_.dir(), "/slirp4netns.sock").c_str());
  }
  if (host_tap_) {
    first.Update(DeleteVmTable(state_.network().nft_table()));
    first.Update(DeleteTap(state_.network().tap()));
    host_tap_ = false;
  }
  return first;
}

[[nodiscard]] absl::Status TearDownLeftovers(const VmState& state) {
  const NetworkState& net = state.network();
  absl::Status first = absl::OkStatus();
  if (net.mode() == kPasta || net.mode() == kSlirp4netns) {
    // The helper first: it would otherwise notice the namespace going.
    first.Update(KillRecorded(net.helper_pid(), net.helper_start_ticks(),
                              absl::Seconds(5)));
    first.Update(KillRecorded(net.holder_pid(), net.holder_start_ticks(),
                              absl::Seconds(5)));
    return first;
  }
  if (net.mode() != "tap") return first;
  if (!net.nft_table().empty()) first.Update(DeleteVmTable(net.nft_table()));
  if (!net.tap().empty()) first.Update(DeleteTap(net.tap()));
  return first;
}

}  // namespace fcvm::runner::net
