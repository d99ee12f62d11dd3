#ifndef FCVM_RUNNER_EXEC_CP_H_
#define FCVM_RUNNER_EXEC_CP_H_

// `fcvm cp`: files between the host and a VM's container, with Podman's
// syntax and rules (podman-cp(1)): NAME:PATH on one side, "-" for a tar
// stream on stdin or stdout; a destination that is an existing directory
// receives the source under its own name, any other names the copy.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runner/exec/client.h"

namespace fcvm::runner::exec {

struct CpArgs {
  std::string vm;         // The VM's name.
  bool to_vm = false;     // Host -> VM.
  std::string vm_path;    // In the container, absolute.
  std::string host_path;  // As given; "-": a tar on stdin or stdout.
};

// SRC and DST as Podman reads them: an argument starting with '/' or '.'
// is a host path, else "NAME:PATH" names a container path. InvalidArgument
// (a usage message) unless exactly one side is in a VM.
[[nodiscard]] absl::StatusOr<CpArgs> ParseCpArgs(const std::string& src,
                                                 const std::string& dst);

// The container's `vm_path` to `host_dst` (an existing directory: into
// it; else created or replaced, its parent must exist; "-": the tar
// stream itself, to `stdout_fd`). Errors that the agent reported (the
// copy's exit code, its stderr) read "NAME:PATH: <what it said>"; the
// channel's own are IsChannelError.
[[nodiscard]] absl::Status CopyFromVm(HubClient& client,
                                      const std::string& vm_path,
                                      const std::string& host_dst,
                                      int stdout_fd);

// `host_src` to the container's `vm_dst` (an existing directory: into it;
// else created or replaced, its parent must exist; with `host_src` "-", a
// tar read from `stdin_fd` is unpacked into the directory `vm_dst`).
[[nodiscard]] absl::Status CopyToVm(HubClient& client,
                                    const std::string& host_src,
                                    const std::string& vm_dst, int stdin_fd);

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_CP_H_
