#ifndef FCVM_RUNNER_VM_CHANNEL_HUB_H_
#define FCVM_RUNNER_VM_CHANNEL_HUB_H_

// The host's end of a VM's control channel, run by the VM's supervisor (its
// one owner) in a thread of its own. It holds the one link to the agent
// (QEMU's virtio-serial port socket, or Firecracker's vsock socket with its
// "CONNECT <port>" handshake), reconnects it when it drops, and serves
// clients (`fcvm exec`, `fcvm cp`) on <vm dir>/channel.sock (0600): each
// client's sessions are renumbered onto the link and their frames routed
// back. Nothing listens on a network address.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm::runner {

struct HubOptions {
  // "virtio-serial" (connect to a Unix socket QEMU listens on) or "vsock"
  // (Firecracker's host socket; "CONNECT <port>\n", "OK <port>\n").
  std::string transport;
  std::string guest_socket;  // The VMM's end on the host.
  std::string vm_name;       // For messages.
  // How long a client's Open waits for the agent to be up.
  absl::Duration open_wait = absl::Seconds(30);
};

class ChannelHub {
 public:
  // Serves on `listener` (channel.sock, bound by the caller before any
  // thread runs) from a new thread.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ChannelHub>> Start(
      HubOptions options, UniqueFd listener);
  ~ChannelHub();  // Stops the thread; every client and the link close.

  ChannelHub(const ChannelHub&) = delete;
  ChannelHub& operator=(const ChannelHub&) = delete;

 private:
  ChannelHub() = default;
  void Serve(HubOptions options, UniqueFd listener);

  UniqueFd stop_;  // An eventfd: written once to end the thread.
  std::thread thread_;
};

// What the hub of the VM in `dir` says of its channel (one Hello asked
// and answered): whether the agent's end is up, and over what.
struct ChannelStatus {
  bool listening = false;  // A hub answered.
  bool agent_up = false;
  std::string transport;
  std::string agent_version;
};
ChannelStatus ProbeChannel(const std::string& dir,
                           absl::Duration timeout = absl::Milliseconds(500));

// {"up": true, "transport": "virtio-serial", "agent": "fc-agent"}; "up" is
// false when no hub answered or its agent is not connected.
std::string ChannelJson(const ChannelStatus& status);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_CHANNEL_HUB_H_
