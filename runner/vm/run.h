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

// The process's exit code: the container's for a foreground run; 0 for a
// detached one once ready; 125 when the VM failed before the container
// ran (as Podman does), 1 when the run was refused.
int RunVm(StateStore& store, Launch launch,
          const std::vector<std::string>& holder_argv);

// `run -d` in two steps, so several VMs can start before any is awaited
// (clone --count N): the VM created and its supervisor forked; then its
// word awaited and the name and ports printed (the exit code as RunVm's).
struct StartedRun {
  VmState state;
  DetachedStart detached;
};
[[nodiscard]] absl::StatusOr<StartedRun> StartDetachedRun(
    StateStore& store, Launch launch,
    const std::vector<std::string>& holder_argv);
// Waits until `deadline` (default: ten minutes from now).
int AwaitDetachedRun(StateStore& store, StartedRun& run,
                     absl::Time deadline = absl::InfinitePast());

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_RUN_H_
