#ifndef FCVM_RUNNER_NET_ROOTLESS_H_
#define FCVM_RUNNER_NET_ROOTLESS_H_

// Rootless networking for a VM whose NIC is a TAP (Firecracker's only
// kind; QEMU's too with --network pasta|slirp4netns). The VM gets a network
// namespace of its own, owned by a user namespace of the user's own, and in
// it the same TAP, /30 and nftables rules privileged mode puts on the host
// (CreateTapAndTable, run inside). A user-mode network stack links that
// namespace to the host: pasta (from passt) or slirp4netns, whichever is
// installed. It forwards each published port from the host's 127.0.0.1:H
// to the namespace's port H, where the VM's DNAT rule sends it on to the
// guest; the guest's own traffic is masqueraded out of the namespace's
// uplink and leaves through the helper's ordinary sockets.
//
// Three processes: `fcvm netns-holder` enters new namespaces, builds
// the TAP and rules there and stays (the namespaces live while it or the
// VMM does); the helper attaches to it by pid; the VMM joins it through
// nsenter (VmmCommand in runner/vmm.h).

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "runner/net/tap_network.h"
#include "runner/state/state.pb.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner::net {

// The helper for `wanted`: "pasta" or "slirp4netns" if that is installed,
// "auto" the first installed of the two. The error names the Debian
// package to install.
[[nodiscard]] absl::StatusOr<std::string> ChooseRootlessHelper(
    const std::string& wanted);

// The helper's command line: attach to the namespaces of `holder`, forward
// `ports` (pasta: on its command line; slirp4netns takes them through its
// API socket, `api_socket`, afterwards). `as_root`: fcvm runs as root, and
// pasta is told to stay root rather than turn into nobody (nobody could
// not enter a namespace root owns).
std::vector<std::string> HelperArgv(const std::string& helper, pid_t holder,
                                    const std::string& api_socket,
                                    const std::vector<PublishedPort>& ports,
                                    bool as_root);

// slirp4netns's API request forwarding `port`: the host's 127.0.0.1:H to
// the namespace's port H (the DNAT rule there takes it to the guest).
std::string SlirpHostForwardRequest(const PublishedPort& port);

// What slirp4netns answered: OK for {"return": ...}, else its error's
// words.
[[nodiscard]] absl::Status SlirpResponseStatus(const std::string& response);

// In the holder: leaves the caller's user and network namespaces for new
// ones where it is root (its own uid and gid mapped to 0), with loopback
// up.
[[nodiscard]] absl::Status EnterOwnNamespaces();

// In the holder: waits until the helper has configured the uplink: an
// interface other than lo and `tap` with an IPv4 address, and a default
// route. Returns "IFNAME ADDRESS/PREFIX".
[[nodiscard]] absl::StatusOr<std::string> WaitForUplink(const std::string& tap,
                                                        absl::Duration timeout);

// The body of `fcvm netns-holder`. Speaks lines on stdin/stdout with
// RootlessNetwork::Start: first it reads the VM's network (a VmState with
// id, network and ports, as one line of protobuf JSON: the supervisor hands
// it over, nothing is read back from the store), then says "ready" once the
// namespaces, TAP and table are there; on "uplink", "uplink IFNAME
// ADDRESS" once the helper has set the namespace up; "error: WHY" instead
// of either, and exit 1. Then it waits for the end of its stdin. Returns
// the exit code.
int NetnsHolderMain();

// The namespace, its holder and its helper, for one VM. Destroying it ends
// both processes (the namespace goes once the VMM has ended too).
class RootlessNetwork {
 public:
  // Starts `holder_argv` (fcvm netns-holder) and the helper named by
  // state.network().mode(); returns once the guest's network is complete:
  // TAP and rules in the namespace, uplink configured, ports forwarded.
  // Both log to `dir`/network.log, whose last line failures quote.
  [[nodiscard]] static absl::StatusOr<RootlessNetwork> Start(
      const VmState& state, std::vector<std::string> holder_argv,
      const std::string& dir, absl::Duration timeout = absl::Seconds(20));

  RootlessNetwork(RootlessNetwork&&) = default;
  RootlessNetwork& operator=(RootlessNetwork&&) = default;

  pid_t holder_pid() const { return holder_->pid(); }
  pid_t helper_pid() const { return helper_->pid(); }
  // "IFNAME ADDRESS/PREFIX" of the namespace's uplink.
  const std::string& uplink() const { return uplink_; }

 private:
  RootlessNetwork() = default;

  std::optional<Subprocess> holder_;
  std::optional<Subprocess> helper_;
  std::string uplink_;
};

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_ROOTLESS_H_
