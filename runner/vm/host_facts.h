#ifndef FCVM_RUNNER_VM_HOST_FACTS_H_
#define FCVM_RUNNER_VM_HOST_FACTS_H_

// The I/O half of planning a run: what the host has (VMMs, KVM that
// really runs a guest, rootless helpers, name servers), what the image and
// volumes are, free ports. PlanLaunch (launch.h) decides on them.

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "runner/vm/launch.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {

// The guest's assets (global flags; `bazel run //runner:vm` passes them).
struct Assets {
  std::string arch;    // The guest's CPU.
  std::string kernel;  // Absolute paths.
  std::string rootfs;
  std::map<std::string, std::string> oci;  // Image name -> OCI archive.
  // Image name -> its baked root filesystem (ext4), run instead of loading
  // the archive, whose config it runs with.
  std::map<std::string, std::string> image_rootfs;
  // Where they came from ("flags", or a release: runner/assets/assets.h),
  // for inspect.
  std::string source;
};

struct FactsRequest {
  Assets assets;
  std::string state_root;   // Also where KVM verdicts are remembered.
  std::string firecracker;  // The firecracker to use; empty: PATH's.
  // Makes a path on the command line absolute (the caller's directory).
  std::function<std::string(const std::string&)> resolve;
  // Told which form of a local image the run uses (a line for stderr);
  // null: nothing said.
  std::function<void(const std::string&)> note;
};

// Gathers what `flags` needs: KVM is probed only for a backend the flags
// leave possible and that is installed (probes are remembered; the first
// one can take seconds).
[[nodiscard]] absl::StatusOr<HostFacts> GatherHostFacts(
    const RunFlags& flags, const FactsRequest& request);

// Where random bytes come from: getrandom(2) unless a test says otherwise.
using RandomSource = std::function<ssize_t(void* buffer, size_t size)>;

// Fresh random seeds; an error naming the cause if the source fails (a VM
// must never get a constant id, machine-id or entropy).
[[nodiscard]] absl::StatusOr<LaunchSeeds> DrawSeeds(
    const RandomSource& random = nullptr);

// The host's DNS servers for a guest on a TAP: loopback resolvers (like
// systemd-resolved's stub) are unreachable from the guest and left out.
std::vector<std::string> HostNameservers(const std::string& resolv_conf);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_HOST_FACTS_H_
