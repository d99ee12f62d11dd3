#include "runner/vm/run.h"

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
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

int RunVm(StateStore& store, Launch launch,
          const std::vector<std::string>& holder_argv) {
  const bool detach = launch.detach;
  const std::optional<RestoreSource> restore = launch.restore;
  absl::StatusOr<CreatedVm> vm = CreateVm(store, std::move(launch));
  if (!vm.ok()) return Say(1, std::string(vm.status().message()));
  const VmState& state = vm->state;
  const char* name = state.name().c_str();
  std::unique_ptr<Vmm> vmm =
      MakeVmm(state.backend(), state.accel(), state.vmm_binary());
  std::fprintf(stderr, "fcvm: %s: %s, %s; writable disk %s in %s\n", name,
               vmm->Describe().c_str(), state.accel_reason().c_str(),
               vm->disk.method.c_str(),
               absl::FormatDuration(vm->disk.took).c_str());
  for (const std::string& volume : state.volumes()) {
    std::fprintf(stderr, "fcvm: %s: volume %s\n", name, volume.c_str());
  }
  SuperviseOptions options;
  options.progress = true;  // Foreground: stderr; detached: supervisor.log.
  options.holder_argv = holder_argv;
  options.restore = restore;
  auto supervise = [&](Lease lease, SuperviseOptions& with) {
    return Supervise(store, state, std::move(lease), *vmm, with);
  };
  if (!detach) return supervise(std::move(vm->lease), options);

  absl::StatusOr<DetachedOutcome> outcome =
      RunDetached(std::move(vm->lease), state.dir() + "/supervisor.log",
                  supervise, options);
  if (!outcome.ok()) return Say(125, std::string(outcome.status().message()));
  const std::string see = absl::StrCat(" (fcvm logs --console ", name, ")");
  if (outcome->still_booting) {
    return Say(1, absl::StrCat(name, ": ", outcome->error, see));
  }
  if (!outcome->ready) {
    absl::StatusOr<VmState> ended = store.Read(state.name());
    const bool exited = ended.ok() && ended->phase() == VmState::EXITED;
    return Say(exited ? ended->exit_code() : 125,
               absl::StrCat(
                   name, ": ended before it was ready: ", outcome->error, see));
  }
  std::printf("%s\n", name);
  for (const PublishedPort& port : state.ports()) {
    std::fprintf(stderr, "fcvm: %s: guest port %u/%s is at 127.0.0.1:%u\n",
                 name, port.guest_port(), port.protocol().c_str(),
                 port.host_port());
  }
  return 0;
}

}  // namespace fcvm::runner
