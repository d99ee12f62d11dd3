#ifndef FCVM_RUNNER_EXEC_PUMP_H_
#define FCVM_RUNNER_EXEC_PUMP_H_

// `fcvm exec`'s data path: a session's streams to and from the caller's
// file descriptors, with flow control both ways.

#include <string>

#include "absl/status/statusor.h"
#include "channel/channel.pb.h"
#include "runner/exec/client.h"

namespace fcvm::runner::exec {

struct ExecResult {
  channel::Exit exit;
  std::string id;  // The session's id in the guest (Started), for `exec -d`.
};

// Runs `exec` as a session of `client` until its Exit, which it returns:
// `in_fd` goes to its STDIN (only if exec.stdin; read when poll says so
// and only as far as the agent's credit goes), its STDOUT to `out_fd` and
// its STDERR to `err_fd` (output is credited back as it is written, so at
// most a window is held here). With exec.tty and a terminal on `in_fd`
// (else `out_fd`): that terminal's size goes in the Open if exec has none,
// and every SIGWINCH sends its new size. The fds are the caller's (often a
// terminal shared with the shell): their flags are left alone. Errors: the
// channel's (IsChannelError), and reading or writing the fds.
[[nodiscard]] absl::StatusOr<ExecResult> RunExec(HubClient& client,
                                                 channel::Exec exec, int in_fd,
                                                 int out_fd, int err_fd);

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_PUMP_H_
