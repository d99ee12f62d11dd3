#ifndef FCVM_RUNNER_VM_LOGS_H_
#define FCVM_RUNNER_VM_LOGS_H_

// `fcvm logs`: a VM's container output (or its whole console) as kept on
// disk: each log holds at most the VM's log_max_bytes, plus one rotated
// generation (<log>.1), so older output is gone; that is said, with the
// limits. -f follows new output (inotify, not polling) until the VM's owner
// ends (its pidfd) and nothing more came.

#include <string>

#include "absl/status/status.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner {

struct LogsRequest {
  bool console = false;  // console.log instead of container.log.
  bool follow = false;
  int out_fd = 1;
  int note_fd = 2;  // Where the note about dropped output goes.
};

[[nodiscard]] absl::Status CopyLogs(const VmState& state,
                                    const LogsRequest& request);

// "output older than the last 16 MiB is not kept (each log: 8 MiB, plus
// one rotated file)".
std::string LogLimitsText(uint64_t log_max_bytes);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_LOGS_H_
