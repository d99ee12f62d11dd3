#ifndef FCVM_RUNNER_VM_SUPERVISOR_H_
#define FCVM_RUNNER_VM_SUPERVISOR_H_

// Runs one VM to its end: starts the VMM, reads the console (all of it to
// console.log; the agent's framed status into the state file and, for a
// foreground run, progress lines; the container's output to
// container.log), turns SIGTERM/SIGINT into a graceful stop (the agent
// stops the container, syncs, powers off), and ends the VMM the hard way
// when the guest does not power off in time.

#include <string>

#include "runner/state/state_store.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {

struct SuperviseOptions {
  bool progress = false;  // Phase lines on stderr (foreground `run`).
};

// The container's exit code; 125 when the VM failed before it ran one.
int Supervise(StateStore& store, const std::string& name, Vmm& vmm,
              const SuperviseOptions& options);

// Paths inside a VM's directory.
inline constexpr char kConsoleLog[] = "console.log";
inline constexpr char kContainerLog[] = "container.log";

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_SUPERVISOR_H_
