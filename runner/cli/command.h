#ifndef FCVM_RUNNER_CLI_COMMAND_H_
#define FCVM_RUNNER_CLI_COMMAND_H_

// One `fcvm` subcommand: its name, a line of synopsis, and the function
// that declares its flags on its CLI11 app and returns what runs it. Each
// lives in its own cmd_<name>.cc, thin: parse, call a library, print.
// main.cc registers them in one table.

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "runner/cli/context.h"

namespace fcvm::runner {

struct Command {
  std::string name;
  std::string synopsis;
  std::vector<std::string> aliases;
  // Called before parsing; the returned function runs after it and gives
  // the exit code: 0, 1 (the request failed: the message names the VM or
  // file and the cause), 2 (usage), or for `run` the container's own.
  std::function<std::function<int()>(CLI::App& app, Context& context)> setup;
  bool hidden = false;  // Internal (netns-holder): not in --help.
};

// "fcvm: <message>" on stderr; returns `code`.
int Complain(int code, const absl::Status& status);
int Complain(int code, const std::string& message);

Command RunCommand();
Command ApiCommand();
Command LsCommand();
Command InspectCommand();
Command LogsCommand();
Command StopCommand();
Command RmCommand();
Command GcCommand();
Command PauseCommand();
Command ResumeCommand();
Command SnapshotCommand();
Command TopCommand();
Command ExecCommand();
Command CpCommand();
// `snapshot` subcommands (cmd_snapshot_ls.cc, cmd_snapshot_rm.cc).
int SnapshotList(Context& ctx, bool json);
int SnapshotInspect(Context& ctx, const std::vector<std::string>& tags);
int SnapshotRemove(Context& ctx, const std::vector<std::string>& tags,
                   bool force);
Command CloneCommand();
Command CacheCommand();
Command TemplateCommand();
Command PreflightCommand();
Command SetupCommand();
// `fcvm --version` (cmd_version.cc).
int PrintVersion(Context& ctx);
// `fcvm preflight` and `fcvm setup preflight`: the report, its exit code.
int PrintPreflight(Context& ctx);
Command ServeCommand();
Command MemoryServerCommand();
Command NetnsHolderCommand();

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CLI_COMMAND_H_
