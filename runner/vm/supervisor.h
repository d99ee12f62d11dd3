#ifndef FCVM_RUNNER_VM_SUPERVISOR_H_
#define FCVM_RUNNER_VM_SUPERVISOR_H_

// The one owner of a running VM. It holds the VM's lease from `run` to its
// own end, and alone writes the VM's state after the first write, sets up
// and tears down its network (every mode, once), starts the VMM (a boot,
// or a restore), reads the console (console.log; the agent's status into
// the state and, for a foreground run, progress lines; the container's
// output to container.log; both capped and rotated), answers `pause` and
// `resume` on control.sock, turns SIGTERM/SIGINT/SIGHUP into a graceful
// stop (the agent stops the container, syncs, powers off) and ends the VMM
// the hard way when the guest does not power off in time. Its last act is
// the final state write; the lease is released when it exits.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "runner/state/lease.h"
#include "runner/state/state_store.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {

struct SuperviseOptions {
  bool progress = false;  // Phase lines on stderr.
  // Exactly one of these is called, once: the container is ready (with
  // the state as written then), or the VM failed or ended before that
  // (the error). For `run -d`, which returns then.
  std::function<void(const VmState&)> on_ready;
  std::function<void(const std::string&)> on_failed;
  // Starts `fcvm netns-holder` (rootless networks).
  std::vector<std::string> holder_argv;
  // When not empty and the VM's state asks for a startup-cache entry
  // (state.cache: a key, not a hit): `<this> cache fill <name>` is started
  // once the container is first ready, to snapshot the VM into the cache
  // while it runs on (runner/cache/fill.h). The supervisor owns that
  // process: it is reaped, and ended with the VM.
  std::vector<std::string> cache_fill_argv;
  // Restore this snapshot instead of booting.
  std::optional<RestoreSource> restore;
  // After a stop request, the guest has the container's stop timeout plus
  // this to power off before the VMM is ended the hard way.
  absl::Duration power_off_slack = absl::Seconds(30);
};

// Runs the VM in `state` (as CreateVm wrote it) to its end, owning `lease`.
// Returns the container's exit code; 125 when the VM failed before it ran
// one (as Podman does).
int Supervise(StateStore& store, VmState state, Lease lease, Vmm& vmm,
              const SuperviseOptions& options);

// Files in a VM's directory.
inline constexpr char kConsoleLog[] = "console.log";
inline constexpr char kContainerLog[] = "container.log";
inline constexpr char kVmmLog[] = "vmm.log";
// When a state has no log_max_bytes (older VMs).
inline constexpr uint64_t kDefaultLogMaxBytes = uint64_t{8} << 20;

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_SUPERVISOR_H_
