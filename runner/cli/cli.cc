#include "runner/cli/cli.h"

#include <signal.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"

namespace fcvm::runner {

int Complain(int code, const std::string& message) {
  std::fprintf(stderr, "fcvm: %s\n", message.c_str());
  return code;
}

bool SupervisorAlive(const VmState& state) {
  return SameProcessAlive(state.supervisor_pid(),
                          state.supervisor_start_ticks());
}

absl::Status StopVm(Cli& cli, const std::string& name, absl::Duration timeout) {
  absl::StatusOr<VmState> state = cli.store.Read(name);
  if (!state.ok()) return state.status();
  if (SupervisorAlive(*state)) {
    kill(state->supervisor_pid(), SIGTERM);
    const absl::Time deadline = absl::Now() + timeout;
    while (SupervisorAlive(*state) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (SupervisorAlive(*state)) {
      kill(state->supervisor_pid(), SIGKILL);
    }
  }
  // A VMM without its supervisor (a killed runner) goes the hard way.
  state = cli.store.Read(name);
  if (state.ok() &&
      SameProcessAlive(state->vmm_pid(), state->vmm_start_ticks())) {
    kill(state->vmm_pid(), SIGKILL);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (SameProcessAlive(state->vmm_pid(), state->vmm_start_ticks()) &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    (void)net::TearDownNetwork(*state);
    (void)cli.store.Update(name, [](VmState& s) {
      if (s.phase() != VmState::EXITED) {
        s.set_phase(VmState::FAILED);
        if (s.error().empty()) s.set_error("killed: its runner was gone");
      }
      s.set_vmm_pid(0);
      s.set_ended_unix_ms(absl::ToUnixMillis(absl::Now()));
    });
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner
