#ifndef FCVM_AGENT_AGENT_H_
#define FCVM_AGENT_AGENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/identity.h"
#include "agent/mmds.h"
#include "agent/plan.pb.h"
#include "agent/plan_source.h"
#include "agent/report.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"

namespace fcvm::agent {

struct AgentOptions {
  std::string cmdline_path = "/proc/cmdline";
  std::string sysfs_root = "/sys";
  MmdsOptions mmds;
  // The NIC MMDS is reached through (Firecracker's first interface).
  std::string mmds_interface = "eth0";
  // How long to wait for a plan (MMDS may be filled after boot).
  absl::Duration plan_timeout = absl::Seconds(60);
  // MMDS only: how often to look for a new generation. A dropped vsock
  // stream (what a snapshot restore does to it) triggers a look at once.
  absl::Duration generation_poll = absl::Seconds(1);
  IdentityOptions identity;
  std::string run_dir = "/run/fcvm";
  absl::Duration load_timeout = absl::Minutes(10);
  // Status stream to the host over vsock (CID 2 = host), when the VM has
  // a vsock device.
  uint32_t vsock_port = 1024;
  // The control channel's server (agent/channel_server.h), started at once
  // and restarted a second after it dies; empty: none (fc-agent's main
  // gives `fc-agent channel`).
  std::vector<std::string> channel_argv;
};

// The agent: fetch the plan, apply the identity, get the image, run the
// container with Podman, report, stop on request, re-identify clones.
// Returns the process exit code: the container's, or 1 for an agent error
// (after an ERROR event says which step failed and why).
int RunAgent(const AgentOptions& options, Reporter& reporter);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_AGENT_H_
