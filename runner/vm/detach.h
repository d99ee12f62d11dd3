#ifndef FCVM_RUNNER_VM_DETACH_H_
#define FCVM_RUNNER_VM_DETACH_H_

// `run -d`: the supervisor in a child process of its own session (stdio
// to <vm dir>/supervisor.log), and the caller waits until it says the
// container is ready or the VM failed, over a pipe: if the child dies
// without a word, the pipe's end says so at once (no polling the state).
// The VM's lease passes to the child across the fork; the caller's copy
// is closed before it waits.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "runner/state/lease.h"
#include "runner/state/state.pb.h"
#include "runner/vm/supervisor.h"

namespace fcvm::runner {

// What the detached supervisor said.
struct DetachedOutcome {
  bool ready = false;
  bool still_booting = false;  // Not ready within the wait; it goes on.
  std::string error;           // When not ready.
};

// A detached supervisor started, not yet heard from.
struct DetachedStart {
  pid_t pid = -1;
  UniqueFd report;  // Its word comes here; the pipe ends when it dies.
  std::string log_path;
};

// Forks; the child runs `supervise` with on_ready/on_failed set to report
// back (its other options as given), then exits with its code. Returns at
// once in the caller (several can be started before any is awaited).
[[nodiscard]] absl::StatusOr<DetachedStart> StartDetached(
    Lease lease, const std::string& log_path,
    const std::function<int(Lease lease, SuperviseOptions& options)>& supervise,
    SuperviseOptions options);

// Until the child reports or dies, or `wait` is over.
[[nodiscard]] DetachedOutcome AwaitDetached(
    DetachedStart& start, absl::Duration wait = absl::Minutes(10));

// StartDetached, then AwaitDetached.
[[nodiscard]] absl::StatusOr<DetachedOutcome> RunDetached(
    Lease lease, const std::string& log_path,
    const std::function<int(Lease lease, SuperviseOptions& options)>& supervise,
    SuperviseOptions options, absl::Duration wait = absl::Minutes(10));

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_DETACH_H_
