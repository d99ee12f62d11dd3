#ifndef FCVM_RUNNER_STATE_PROCESS_H_
#define FCVM_RUNNER_STATE_PROCESS_H_

// Processes recorded in VM state, by pid and start time: a pid the kernel
// has since given to another process never passes for ours.

#include <sys/types.h>

#include <cstdint>

namespace fcvm::runner {

// Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 if no such pid.
uint64_t StartTicks(pid_t pid);

// Whether `pid` runs and is the process that started at `start_ticks`.
bool SameProcessAlive(pid_t pid, uint64_t start_ticks);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STATE_PROCESS_H_
