#ifndef FCVM_RUNNER_VM_CREATE_H_
#define FCVM_RUNNER_VM_CREATE_H_

// Making a planned VM exist: its subnet (TAP modes, chosen under the
// store's lock so two runs never collide), its name and lease and state,
// written once (StateStore::Create), then its disks: the sparse writable
// disk and the images of directory volumes. The state is not written
// again before the supervisor starts. If anything fails after the claim,
// the VM's directory is removed again (its creator owns it).

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "runner/state/lease.h"
#include "runner/state/state_store.h"
#include "runner/storage/disk.h"
#include "runner/vm/launch.h"

namespace fcvm::runner {

// Sparse; formatted by the guest's init on first boot.
inline constexpr uint64_t kWritableDiskBytes = uint64_t{8} << 30;

struct CreatedVm {
  VmState state;
  Lease lease;
  DiskReport disk;
};

[[nodiscard]] absl::StatusOr<CreatedVm> CreateVm(StateStore& store,
                                                 Launch launch);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_CREATE_H_
