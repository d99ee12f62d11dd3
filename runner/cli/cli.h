#ifndef FCVM_RUNNER_CLI_CLI_H_
#define FCVM_RUNNER_CLI_CLI_H_

// What every `fcvm` subcommand gets: the state store and the VM assets
// (global flags, resolved to absolute paths before any command runs).

#include <map>
#include <string>
#include <vector>

#include "runner/state/state_store.h"

namespace fcvm::runner {

struct Cli {
  StateStore store{""};
  std::string arch;    // The guest CPU: the host's by default.
  std::string kernel;  // --kernel
  std::string rootfs;  // --rootfs: base.ext4
  // --oci NAME=ARCHIVE: images built locally (bazel run carries them).
  std::map<std::string, std::string> oci;
  // Where relative paths on the command line are relative to (bazel run
  // starts us elsewhere: BUILD_WORKING_DIRECTORY).
  std::string workdir;
};

// Subcommands (one file each). Each returns the process's exit code:
// 0 success, 1 the request failed (message on stderr), 2 bad usage, and
// for `run` the container's own exit code once it ran (125: the VM failed
// before that, as with Podman).
int RunCommand(Cli& cli, const std::vector<std::string>& args);
int LsCommand(Cli& cli, const std::vector<std::string>& args);
int InspectCommand(Cli& cli, const std::vector<std::string>& args);
int LogsCommand(Cli& cli, const std::vector<std::string>& args);
int StopCommand(Cli& cli, const std::vector<std::string>& args);
int RmCommand(Cli& cli, const std::vector<std::string>& args);
int GcCommand(Cli& cli, const std::vector<std::string>& args);
int PreflightCommand(Cli& cli, const std::vector<std::string>& args);
// The userfaultfd memory server for a snapshot's memory (uffd/server.h).
int ServeCommand(Cli& cli, const std::vector<std::string>& args);
// Internal: holds a VM's rootless network namespaces
// (runner/network/rootless.h).
int NetnsHolderCommand(Cli& cli, const std::vector<std::string>& args);

// Prints "fcvm: <message>" on stderr and returns `code`.
int Complain(int code, const std::string& message);

// Whether the VM's supervisor (and so the VM) still runs.
bool SupervisorAlive(const VmState& state);

// Stops a running VM gracefully (its supervisor asks the agent) within
// `timeout`, then the hard way. OK if it was not running.
absl::Status StopVm(Cli& cli, const std::string& name, absl::Duration timeout);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CLI_CLI_H_
