#ifndef FCVM_AGENT_SESSION_COMMAND_H_
#define FCVM_AGENT_SESSION_COMMAND_H_

// What the agent runs for a channel session: pure functions of the
// request, so that every flag's mapping is tested without a VM.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "channel/channel.pb.h"

namespace fcvm::agent {

// Every session's processes carry FCVM_SESSION=<id> in their environment:
// how the agent finds all of them, in the container or not, to signal or
// kill them (a timeout, a host that went away), since `podman exec`'s own
// process is not their parent.
inline constexpr char kSessionEnv[] = "FCVM_SESSION";

struct SessionCommand {
  std::vector<std::string> argv;
  // Added to the agent's own environment (replacing a name it has).
  std::vector<std::string> env;
  std::string working_dir;  // In the VM; empty: "/".
};

// `podman exec` in `container` (or, with in_vm, the command itself, run as
// `user` through runuser), carrying the session's id. InvalidArgument for
// a request that cannot run (no argv, a bad env entry).
[[nodiscard]] absl::StatusOr<SessionCommand> ExecCommand(
    const channel::Exec& exec, const std::string& podman,
    const std::string& container, const std::string& session_id);

// `podman cp CONTAINER:PATH -` / `podman cp - CONTAINER:PATH`.
[[nodiscard]] absl::StatusOr<SessionCommand> CopyOutCommand(
    const channel::CopyOut& copy, const std::string& podman,
    const std::string& container, const std::string& session_id);
[[nodiscard]] absl::StatusOr<SessionCommand> CopyInCommand(
    const channel::CopyIn& copy, const std::string& podman,
    const std::string& container, const std::string& session_id);

// The pids under `proc_root` (/proc) whose environment holds
// FCVM_SESSION=`session_id`.
std::vector<pid_t> SessionProcesses(const std::string& proc_root,
                                    const std::string& session_id);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_SESSION_COMMAND_H_
