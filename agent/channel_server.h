#ifndef FCVM_AGENT_CHANNEL_SERVER_H_
#define FCVM_AGENT_CHANNEL_SERVER_H_

// The agent's end of the control channel (channel/): `fc-agent channel`, a
// process of its own that the agent starts at boot and restarts if it
// dies, so that a fault here never touches the workload. It serves
// sessions the host opens: commands in the VM's container (`podman exec`)
// or in the VM, a pseudo-terminal for them, and tar streams in and out of
// the container (`podman cp`), each with its own flow control.

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm::agent {

struct ChannelServerOptions {
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  // The container `podman exec` and `podman cp` reach.
  std::string container = "fcvm-workload";
  std::string podman = "podman";
  std::string version = "fc-agent";
  // While the virtio-serial port's host side is closed the port reads as
  // hung up: how often to look again.
  absl::Duration reconnect_poll = absl::Milliseconds(100);
};

// The exit code when the VM has no channel device (neither the
// virtio-serial port nor vsock): nothing to restart.
inline constexpr int kNoChannelDevice = 3;

// Serves the channel until a fatal error; returns the process exit code.
int RunChannelServer(const ChannelServerOptions& options);

// Serves one connected transport until its peer hangs up (tests: a
// socketpair stands in for a vsock connection). Returns why it ended.
absl::Status ServeChannel(const ChannelServerOptions& options, UniqueFd fd);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_CHANNEL_SERVER_H_
