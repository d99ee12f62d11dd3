#include "runner/vm/cleanup.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runner/net/tap_network.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"

namespace fcvm::runner {

bool LivePhase(VmState::Phase phase) {
  return phase == VmState::CREATING || phase == VmState::BOOTING ||
         phase == VmState::RUNNING || phase == VmState::STOPPING ||
         phase == VmState::PAUSED;
}

[[nodiscard]] absl::StatusOr<CleanupReport> CleanUpAfterOwner(
    StateStore& store, const VmState& state, const Lease& lease) {
  if (lease.dir() != state.dir()) {
    return absl::InternalError(absl::StrCat(
        "cleaning up VM '", state.name(), "' with the lease of ", lease.dir()));
  }
  CleanupReport report;
  auto note = [&](const std::string& what) {
    absl::StrAppend(&report.what, report.what.empty() ? "" : ", ", what);
  };
  if (SameProcessAlive(state.vmm_pid(), state.vmm_start_ticks())) {
    RETURN_IF_ERROR(
        Annotate(KillRecorded(state.vmm_pid(), state.vmm_start_ticks(),
                              absl::Seconds(10)),
                 absl::StrCat("VM '", state.name(), "': ending its VMM")));
    report.ended_vmm = true;
    note(absl::StrCat("VMM pid ", state.vmm_pid()));
  }
  const NetworkState& net = state.network();
  const bool rootless_left =
      SameProcessAlive(net.helper_pid(), net.helper_start_ticks()) ||
      SameProcessAlive(net.holder_pid(), net.holder_start_ticks());
  const bool host_tap = net.mode() == "tap" && LivePhase(state.phase());
  if (rootless_left || host_tap) {
    RETURN_IF_ERROR(
        Annotate(net::TearDownLeftovers(state),
                 absl::StrCat("VM '", state.name(), "': its network")));
    report.network = true;
    note(host_tap
             ? absl::StrCat("TAP ", net.tap(), ", table ip ", net.nft_table())
             : absl::StrCat(net.mode(), " and the VM's network namespace"));
  }
  for (const char* socket :
       {"qmp.sock", "api.sock", "control.sock", "slirp4netns.sock"}) {
    unlink(absl::StrCat(state.dir(), "/", socket).c_str());
  }
  if (LivePhase(state.phase())) {
    RETURN_IF_ERROR(store
                        .Update(state.name(),
                                [](VmState& s) {
                                  s.set_phase(VmState::FAILED);
                                  if (s.error().empty()) {
                                    s.set_error(
                                        "its supervisor was gone (killed?); "
                                        "cleaned up");
                                  }
                                  s.set_exit_code(125);
                                  s.set_ended_unix_ms(
                                      absl::ToUnixMillis(absl::Now()));
                                  s.set_vmm_pid(0);
                                  s.set_supervisor_pid(0);
                                })
                        .status());
  }
  return report;
}

}  // namespace fcvm::runner
