// fcvm gc: what killed runners left behind. A VM whose supervisor is gone
// while its state says it runs (or is being created) is ended: its VMM
// killed if it still runs, its directory (disk, sockets, logs) removed.
// Stopped VMs are left for `fcvm rm`.
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "runner/cli/cli.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"

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
    if (absl::Status down = net::TearDownNetwork(s); !down.ok()) {
      code = Complain(1, std::string(down.message()));
    } else if (s.network().mode() == "tap") {
      absl::StrAppend(&what, ", TAP ", s.network().tap(), ", nftables rules");
    } else if (s.network().holder_pid() != 0) {
      absl::StrAppend(&what, ", ", s.network().mode(),
                      " and the VM's network "
                      "namespace");
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
  // TAPs and rules that belong to no VM in the store (its directory went
  // first, or another state directory was used).
  std::set<std::string> taps, names;
  if (absl::StatusOr<std::vector<VmState>> left = cli.store.List(); left.ok()) {
    for (const VmState& s : *left) {
      taps.insert(s.network().tap());
      names.insert(s.name());
    }
  }
  for (const std::string& tap : net::ListTaps()) {
    if (taps.count(tap) != 0) continue;
    if (absl::Status deleted = net::DeleteTap(tap); deleted.ok()) {
      std::printf("removed TAP %s (no VM)\n", tap.c_str());
    } else {
      code = Complain(1, std::string(deleted.message()));
    }
  }
  if (absl::StatusOr<std::vector<std::string>> ruled = net::VmsWithRules();
      ruled.ok()) {
    for (const std::string& vm : *ruled) {
      if (names.count(vm) != 0) continue;
      if (absl::Status removed = net::RemoveVmRules(vm); removed.ok()) {
        std::printf("removed nftables rules of %s (no VM)\n", vm.c_str());
      } else {
        code = Complain(1, std::string(removed.message()));
      }
    }
  }
  std::fprintf(stderr, "fcvm: gc: %d VM(s) cleaned up\n", cleaned);
  return code;
}

}  // namespace fcvm::runner
