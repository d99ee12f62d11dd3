#ifndef FCVM_RUNNER_VM_RUN_H_
#define FCVM_RUNNER_VM_RUN_H_

// Runs a planned VM: creates it (create.h), says how (backend, disk,
// volumes) on stderr, then supervises it in the foreground, or with -d in
// a detached child, printing the name and ports once it is ready (as
// `podman run -d` prints the container's id).

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "runner/state/state_store.h"
#include "runner/vm/detach.h"
#include "runner/vm/launch.h"

namespace fcvm::runner {

// What a caller may add to a run, and learn from it beyond its exit code.
struct RunHooks {
  // SuperviseOptions::cache_fill_argv.
  std::vector<std::string> cache_fill_argv;
  // Set: whether the container became ready, else why not. The failure
  // is then the caller's to tell (a restore from the startup cache that
  // failed falls back to a cold boot).
  bool* ready = nullptr;
  std::string* error = nullptr;
  // A detached run prints its name on stdout once ready (and its ports on
  // stderr); false: not (a caller with output of its own).
  bool print_name = true;
};

// The process's exit code: the container's for a foreground run; 0 for a
// detached one once ready; 125 when the VM failed before the container
// ran (as Podman does), 1 when the run was refused.
int RunVm(StateStore& store, Launch launch,
          const std::vector<std::string>& holder_argv,
          const RunHooks& hooks = {});

// `run -d` in two steps, so several VMs can start before any is awaited
// (clone --count N): the VM created and its supervisor forked; then its
// word awaited and the name and ports printed (the exit code as RunVm's).
struct StartedRun {
  VmState state;
  DetachedStart detached;
};
[[nodiscard]] absl::StatusOr<StartedRun> StartDetachedRun(
    StateStore& store, Launch launch,
    const std::vector<std::string>& holder_argv, const RunHooks& hooks = {});
// Waits until `deadline` (default: ten minutes from now).
int AwaitDetachedRun(StateStore& store, StartedRun& run,
                     absl::Time deadline = absl::InfinitePast(),
                     const RunHooks& hooks = {});

// "restored 0.05 s, console answered 0.08 s, ... container ready 0.31 s":
// the phases a VM's state records, with their wall times.
std::string PhasesText(const VmState& state);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_RUN_H_
