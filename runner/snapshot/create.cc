#include "runner/snapshot/create.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runner/snapshot/machine.h"
#include "runner/state/lease.h"
#include "runner/vm/control.h"
#include "runner/vm/supervisor.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<SnapshotManifest> CreateSnapshot(
    const StateStore& vms, SnapshotStore& snapshots,
    const SnapshotRequest& request) {
  ASSIGN_OR_RETURN(VmState state, vms.Read(request.vm));
  if (!Lease::Held(state.dir())) {
    return absl::FailedPreconditionError(
        absl::StrCat("VM '", request.vm, "' is not running"));
  }
  if (state.phase() != VmState::RUNNING && state.phase() != VmState::PAUSED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", request.vm, "' is ", VmState::Phase_Name(state.phase()),
        ": a snapshot is taken of a VM whose container is ready"));
  }
  if (!state.restored_from().snapshot().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", request.vm, "' is a clone of snapshot '",
        state.restored_from().snapshot(),
        "': a clone cannot be snapshotted yet (clone the snapshot again)"));
  }
  if (!state.restored_from().cache_key().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", request.vm, "' was restored from startup-cache entry ",
        state.restored_from().cache_key(),
        ": a clone cannot be snapshotted yet (run it with --no-cache)"));
  }
  ASSIGN_OR_RETURN(std::string version, VmmVersion(state.vmm_binary()));
  std::string tag = request.tag;
  if (tag.empty()) {
    ASSIGN_OR_RETURN(tag, snapshots.NextTag(request.vm));
  }
  ASSIGN_OR_RETURN(PendingSnapshot pending, snapshots.Begin(tag));
  auto fail = [&](const absl::Status& status) {
    snapshots.Abandon(pending);
    return Annotate(
        status, absl::StrCat("snapshot '", tag, "' of VM '", request.vm, "'"));
  };

  ControlRequest control;
  control.mutable_snapshot()->set_dir(pending.dir);
  control.mutable_snapshot()->set_stop(request.stop);
  absl::StatusOr<ControlReply> reply =
      SendControl(state.dir(), control, absl::Minutes(10));
  if (!reply.ok()) return fail(reply.status());
  if (!reply->ok()) return fail(absl::FailedPreconditionError(reply->error()));

  // The state as the VM's owner left it then (its generation, phase).
  absl::StatusOr<VmState> now = vms.Read(request.vm);
  if (now.ok()) state = *now;
  SnapshotManifest manifest;
  manifest.set_tag(tag);
  manifest.set_source_vm(state.name());
  manifest.set_source_id(state.id());
  manifest.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  manifest.set_backend(state.backend());
  manifest.set_vmm_binary(state.vmm_binary());
  manifest.set_vmm_version(version);
  manifest.set_accel(state.accel());
  const MachineDescription machine = DescribeMachine(state);
  manifest.set_machine(machine.machine);
  manifest.set_cpu_model(machine.cpu_model);
  for (const std::string& device : machine.devices)
    manifest.add_devices(device);
  const VmSpec& spec = state.spec();
  manifest.set_arch(spec.arch());
  manifest.set_vcpus(spec.vcpus());
  manifest.set_memory_mib(spec.memory_mib());
  manifest.set_network_mode(state.network().mode());
  manifest.set_guest_ip(state.network().guest_ip());
  manifest.set_generation(state.generation() == 0 ? spec.plan().generation()
                                                  : state.generation());
  // The inputs: every read-only drive (the base image, the image archive,
  // read-only volumes) and the kernel.
  std::vector<std::pair<std::string, std::string>> inputs = {
      {"kernel", spec.kernel()}};
  for (int i = 0; i < spec.disks_size(); ++i) {
    if (!spec.disks(i).read_only()) continue;
    inputs.push_back(
        {i == 0 ? "rootfs" : absl::StrCat("drive ", i), spec.disks(i).path()});
  }
  std::vector<InputFile> known;
  if (absl::StatusOr<std::vector<SnapshotEntry>> others = snapshots.List();
      others.ok()) {
    for (const SnapshotEntry& other : *others) {
      if (!other.manifest.ok()) continue;
      known.insert(known.end(), other.manifest->inputs().begin(),
                   other.manifest->inputs().end());
    }
  }
  for (const auto& [role, path] : inputs) {
    absl::StatusOr<InputFile> input = DescribeInput(role, path, known);
    if (!input.ok()) return fail(input.status());
    *manifest.add_inputs() = *input;
  }
  for (const char* name :
       {kSnapshotStateFile, kSnapshotMemoryFile, kSnapshotDisk}) {
    absl::StatusOr<HeldFile> held = DescribeHeld(pending.dir, name);
    if (!held.ok()) return fail(held.status());
    *manifest.add_files() = *held;
  }
  VmState& source = *manifest.mutable_source();
  source = state;
  source.clear_phases();
  source.clear_error();
  *manifest.mutable_taken() = reply->snapshot();
  *manifest.mutable_cache_key() = request.cache_key;
  manifest.set_template_key(request.template_key);
  if (absl::Status published = snapshots.Publish(pending, manifest);
      !published.ok()) {
    return fail(published);
  }
  return manifest;
}

}  // namespace fcvm::runner
