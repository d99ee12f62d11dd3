// fcvm gc: what killed runners left behind. A VM whose supervisor is gone
// while its state says it runs (or is being created) is ended: its VMM
// killed if it still runs, its directory (disk, sockets, logs) removed.
// Stopped VMs are left for `fcvm rm`.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "runner/cli.h"
#include "runner/process.h"

namespace fcvm::runner {

int GcCommand(Cli& cli, const std::vector<std::string>& args) {
  if (!args.empty()) return Complain(2, "gc takes no arguments");
  absl::StatusOr<std::vector<VmState>> all = cli.store.List();
  if (!all.ok()) return Complain(1, std::string(all.status().message()));
  int code = 0, cleaned = 0;
  for (const VmState& s : *all) {
    // List() shows an unreadable state with no id: nothing to keep there.
    const bool unreadable = s.id().empty();
    const bool ended =
        s.phase() == VmState::EXITED || s.phase() == VmState::FAILED;
    if ((ended && !unreadable) || SupervisorAlive(s)) continue;
    std::string what = "state";
    if (SameProcessAlive(s.vmm_pid(), s.vmm_start_ticks())) {
      (void)StopVm(cli, s.name(), absl::ZeroDuration());
      what = absl::StrCat("VMM pid ", s.vmm_pid(), ", state");
    }
    if (absl::Status removed = cli.store.Remove(s.name()); !removed.ok()) {
      code = Complain(1, std::string(removed.message()));
      continue;
    }
    ++cleaned;
    std::printf("removed %s: %s, disk, sockets and logs (%s)\n",
                s.name().c_str(), what.c_str(),
                VmState::Phase_Name(s.phase()).c_str());
  }
  std::fprintf(stderr, "fcvm: gc: %d VM(s) cleaned up\n", cleaned);
  return code;
}

}  // namespace fcvm::runner
