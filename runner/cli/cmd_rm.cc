// fcvm rm [-f] NAME...: removes a stopped VM: its directory, with the
// writable disk, sockets and logs (-f stops it first).
#include "absl/strings/str_cat.h"
#include "runner/cli/cli.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"

namespace fcvm::runner {

int RmCommand(Cli& cli, const std::vector<std::string>& args) {
  bool force = false;
  std::vector<std::string> names;
  for (const std::string& arg : args) {
    if (arg == "-f" || arg == "--force") {
      force = true;
    } else {
      names.push_back(arg);
    }
  }
  if (names.empty()) return Complain(2, "rm: which VM? fcvm rm [-f] NAME");
  int code = 0;
  for (const std::string& name : names) {
    absl::StatusOr<VmState> state = cli.store.Read(name);
    if (state.ok()) {
      const bool running =
          SupervisorAlive(*state) ||
          SameProcessAlive(state->vmm_pid(), state->vmm_start_ticks());
      if (running && !force) {
        code = Complain(1, absl::StrCat("VM '", name,
                                        "' is running: fcvm stop it first, "
                                        "or fcvm rm -f"));
        continue;
      }
      if (running) (void)StopVm(cli, name, absl::Seconds(60));
    } else if (absl::IsNotFound(state.status())) {
      code = Complain(1, std::string(state.status().message()));
      continue;
    }
    // Idempotent: the supervisor normally did it already.
    if (state.ok()) {
      if (absl::Status down = net::TearDownNetwork(*state); !down.ok()) {
        code = Complain(1, std::string(down.message()));
        continue;
      }
    }
    // A damaged state file is no reason to keep the directory.
    if (absl::Status removed = cli.store.Remove(name); !removed.ok()) {
      code = Complain(1, std::string(removed.message()));
    }
  }
  return code;
}

}  // namespace fcvm::runner
