#ifndef FCVM_RUNNER_STATE_PROCESS_H_
#define FCVM_RUNNER_STATE_PROCESS_H_

// Processes recorded in VM state, by pid and start time: a pid the kernel
// has since given to another process never passes for ours. To signal or
// wait for one, open it as a pidfd (OpenProcess): the check of its start
// time is made after the pidfd exists, so the pidfd is pinned to the
// process the state names, with no window for pid reuse.

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm::runner {

// Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 if no such pid
// or it is a zombie.
uint64_t StartTicks(pid_t pid);

// Whether `pid` runs and is the process that started at `start_ticks`.
bool SameProcessAlive(pid_t pid, uint64_t start_ticks);

// A process (not necessarily our child) held by a pidfd.
class ProcessRef {
 public:
  // The process `pid` that started at `start_ticks`; nullopt when it is
  // gone (or the pid is another process's now).
  [[nodiscard]] static absl::StatusOr<std::optional<ProcessRef>> Open(
      pid_t pid, uint64_t start_ticks);

  pid_t pid() const { return pid_; }
  // Readable once the process has exited.
  int fd() const { return pidfd_.get(); }

  // pidfd_send_signal: reaches this process or nobody.
  [[nodiscard]] absl::Status Signal(int signal) const;
  // Whether it exited within `timeout` (poll on the pidfd).
  bool WaitForExit(absl::Duration timeout) const;
  // SIGKILL, then waits up to `timeout` for it to go.
  [[nodiscard]] absl::Status Kill(absl::Duration timeout) const;

 private:
  ProcessRef(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}

  pid_t pid_;
  UniqueFd pidfd_;
};

// Ends the recorded process if it still runs: SIGKILL through a pidfd and a
// wait of up to `timeout`. OK when it was gone already.
[[nodiscard]] absl::Status KillRecorded(pid_t pid, uint64_t start_ticks,
                                        absl::Duration timeout);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STATE_PROCESS_H_
