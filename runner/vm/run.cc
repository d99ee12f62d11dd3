#include "runner/vm/run.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runner/vm/backends.h"
#include "runner/vm/create.h"
#include "runner/vm/detach.h"
#include "runner/vm/supervisor.h"

namespace fcvm::runner {
namespace {

int Say(int code, const std::string& message) {
  std::fprintf(stderr, "fcvm: %s\n", message.c_str());
  return code;
}

}  // namespace

namespace {

// Creates the VM and says how it runs; the lease, the state and the VMM
// for the supervisor.
struct Created {
  CreatedVm vm;
  std::unique_ptr<Vmm> vmm;
  SuperviseOptions options;
};

[[nodiscard]] absl::StatusOr<Created> Create(
    StateStore& store, Launch launch,
    const std::vector<std::string>& holder_argv, const RunHooks& hooks) {
  const std::optional<RestoreSource> restore = launch.restore;
  ASSIGN_OR_RETURN(CreatedVm vm, CreateVm(store, std::move(launch)));
  const VmState& state = vm.state;
  const char* name = state.name().c_str();
  std::unique_ptr<Vmm> vmm =
      MakeVmm(state.backend(), state.accel(), state.vmm_binary());
  std::fprintf(stderr, "fcvm: %s: %s, %s; writable disk %s in %s\n", name,
               vmm->Describe().c_str(), state.accel_reason().c_str(),
               vm.disk.method.c_str(),
               absl::FormatDuration(vm.disk.took).c_str());
  for (const std::string& volume : state.volumes()) {
    std::fprintf(stderr, "fcvm: %s: volume %s\n", name, volume.c_str());
  }
  SuperviseOptions options;
  options.progress = true;  // Foreground: stderr; detached: supervisor.log.
  options.holder_argv = holder_argv;
  options.restore = restore;
  options.cache_fill_argv = hooks.cache_fill_argv;
  return Created{std::move(vm), std::move(vmm), std::move(options)};
}

}  // namespace

[[nodiscard]] absl::StatusOr<StartedRun> StartDetachedRun(
    StateStore& store, Launch launch,
    const std::vector<std::string>& holder_argv, const RunHooks& hooks) {
  ASSIGN_OR_RETURN(Created created,
                   Create(store, std::move(launch), holder_argv, hooks));
  const VmState& state = created.vm.state;
  Vmm& vmm = *created.vmm;
  auto supervise = [&](Lease lease, SuperviseOptions& with) {
    return Supervise(store, state, std::move(lease), vmm, with);
  };
  ASSIGN_OR_RETURN(DetachedStart detached,
                   StartDetached(std::move(created.vm.lease),
                                 state.dir() + "/supervisor.log", supervise,
                                 created.options));
  return StartedRun{state, std::move(detached)};
}

std::string PhasesText(const VmState& state) {
  std::vector<std::string> parts;
  for (const PhaseTime& phase : state.phases()) {
    parts.push_back(
        absl::StrFormat("%s %.2f s", phase.phase(), phase.wall_ms() / 1000.0));
  }
  return absl::StrJoin(parts, ", ");
}

int AwaitDetachedRun(StateStore& store, StartedRun& run, absl::Time deadline,
                     const RunHooks& hooks) {
  const VmState& state = run.state;
  const char* name = state.name().c_str();
  const DetachedOutcome outcome = AwaitDetached(
      run.detached,
      deadline == absl::InfinitePast()
          ? absl::Minutes(10)
          : std::max(absl::ZeroDuration(), deadline - absl::Now()));
  const std::string see = absl::StrCat(" (fcvm logs --console ", name, ")");
  if (hooks.ready != nullptr) *hooks.ready = outcome.ready;
  if (!outcome.ready && hooks.error != nullptr) {
    *hooks.error = outcome.error;
    if (!outcome.still_booting) return 125;
  }
  if (outcome.still_booting) {
    return Say(1, absl::StrCat(name, ": ", outcome.error, see));
  }
  if (!outcome.ready) {
    absl::StatusOr<VmState> ended = store.Read(state.name());
    const bool exited = ended.ok() && ended->phase() == VmState::EXITED;
    return Say(exited ? ended->exit_code() : 125,
               absl::StrCat(
                   name, ": ended before it was ready: ", outcome.error, see));
  }
  if (absl::StatusOr<VmState> now = store.Read(state.name()); now.ok()) {
    std::fprintf(stderr, "fcvm: %s: ready: %s\n", name,
                 PhasesText(*now).c_str());
  }
  if (!hooks.print_name) return 0;
  std::printf("%s\n", name);
  std::fflush(stdout);
  for (const PublishedPort& port : state.ports()) {
    std::fprintf(stderr, "fcvm: %s: guest port %u/%s is at 127.0.0.1:%u\n",
                 name, port.guest_port(), port.protocol().c_str(),
                 port.host_port());
  }
  return 0;
}

int RunVm(StateStore& store, Launch launch,
          const std::vector<std::string>& holder_argv, const RunHooks& hooks) {
  if (launch.detach) {
    absl::StatusOr<StartedRun> started =
        StartDetachedRun(store, std::move(launch), holder_argv, hooks);
    if (!started.ok()) {
      if (hooks.error != nullptr)
        *hooks.error = std::string(started.status().message());
      return Say(1, std::string(started.status().message()));
    }
    return AwaitDetachedRun(store, *started, absl::InfinitePast(), hooks);
  }
  absl::StatusOr<Created> created =
      Create(store, std::move(launch), holder_argv, hooks);
  if (!created.ok()) {
    if (hooks.error != nullptr)
      *hooks.error = std::string(created.status().message());
    return Say(1, std::string(created.status().message()));
  }
  bool ready = false;
  std::string error;
  created->options.on_ready = [&ready](const VmState&) { ready = true; };
  created->options.on_failed = [&error](const std::string& why) {
    error = why;
  };
  const int code =
      Supervise(store, created->vm.state, std::move(created->vm.lease),
                *created->vmm, created->options);
  if (hooks.ready != nullptr) *hooks.ready = ready;
  if (hooks.error != nullptr) *hooks.error = error;
  return code;
}

}  // namespace fcvm::runner
