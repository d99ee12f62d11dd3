#include "runner/vm/create.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/net/tap_network.h"
#include "runner/net/vm_network.h"
#include "runner/storage/volume.h"

namespace fcvm::runner {
namespace {

// The subnets VMs in the store hold; a state that cannot be read holds
// whatever it held, so its VM's name is reported instead of guessing.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> UsedSubnets(
    const StateStore& store) {
  ASSIGN_OR_RETURN(std::vector<StoreEntry> entries, store.List());
  std::vector<std::string> used;
  for (const StoreEntry& entry : entries) {
    if (entry.state.ok() && !entry.state->network().subnet().empty()) {
      used.push_back(entry.state->network().subnet());
    }
  }
  return used;
}

}  // namespace

[[nodiscard]] absl::StatusOr<CreatedVm> CreateVm(StateStore& store,
                                                 Launch launch) {
  VmState& state = launch.state;
  if (state.backend() == "firecracker") {
    // Where each Firecracker VM's directory appears in its own mount
    // namespace (vm_spec.proto: vmm_root); a clone's must be its
    // snapshot's.
    const std::string vmm_root = absl::StrCat(store.root(), "/firecracker-vm");
    if (launch.restore.has_value() && !state.spec().vmm_root().empty() &&
        state.spec().vmm_root() != vmm_root) {
      return absl::FailedPreconditionError(absl::StrCat(
          "VM '", state.name(), "': its snapshot was taken under ",
          state.spec().vmm_root(), ", not this state root's ", vmm_root,
          " (Firecracker's snapshot names its paths)"));
    }
    RETURN_IF_ERROR(EnsurePrivateDir(vmm_root));
    state.mutable_spec()->set_vmm_root(vmm_root);
  }
  if (!launch.restore.has_value()) {
    // The agent's control channel: the backend's own transport (a clone
    // keeps its snapshot's, whose devices it restores).
    VmSpec& spec = *state.mutable_spec();
    if (state.backend() == "firecracker") {
      spec.set_channel("vsock");
      if (spec.vsock_uds().empty()) {
        spec.set_vsock_uds(absl::StrCat(store.VmDir(state.name()), "/v.sock"));
        spec.set_vsock_cid(3);
      }
    } else {
      spec.set_channel("virtio-serial");
    }
  }
  std::optional<Lease> lease;
  if (net::UsesTap(state.network().mode())) {
    ASSIGN_OR_RETURN(Subnet pool, ParseSubnet(net::SubnetPool()));
    // Choose and claim under the store's lock: the next run sees ours.
    ASSIGN_OR_RETURN(UniqueFd locked, store.LockRoot());
    ASSIGN_OR_RETURN(std::vector<std::string> used, UsedSubnets(store));
    ASSIGN_OR_RETURN(Subnet subnet, AllocateSubnet(pool, used));
    RETURN_IF_ERROR(ApplySubnet(subnet, launch));
    ASSIGN_OR_RETURN(Lease claimed, store.Create(state));
    lease.emplace(std::move(claimed));
  } else {
    ASSIGN_OR_RETURN(Lease claimed, store.Create(state));
    lease.emplace(std::move(claimed));
  }
  auto fail = [&](const absl::Status& status) -> absl::Status {
    (void)store.Remove(state.name(), *lease);
    return Annotate(status, absl::StrCat("VM '", state.name(), "'"));
  };
  absl::StatusOr<DiskReport> disk =
      CreateWritableDisk(state.disk(), kWritableDiskBytes,
                         launch.disk_template);
  if (!disk.ok()) return fail(disk.status());
  for (const VolumeToPrepare& volume : launch.volumes) {
    if (volume.kind != VolumeKind::kDirectory) continue;
    if (absl::Status made = MakeDirectoryImage(
            volume.flag.host_path, state.spec().disks(volume.disk).path());
        !made.ok()) {
      return fail(made);
    }
  }
  if (launch.created) launch.created();
  return CreatedVm{std::move(state), std::move(*lease), *disk};
}

}  // namespace fcvm::runner
