#ifndef FCVM_RUNNER_VM_BACKENDS_H_
#define FCVM_RUNNER_VM_BACKENDS_H_

// The Vmm for a backend name, as the launch plan and the state name it.
// Constructing one does no I/O.

#include <memory>
#include <string>

#include "runner/vmm/vmm.h"

namespace fcvm::runner {

inline constexpr char kQemu[] = "qemu";
inline constexpr char kFirecracker[] = "firecracker";

// "qemu" (with `accel` "kvm" or "tcg") or "firecracker" (`binary`: its
// executable; empty: "firecracker" from PATH). Null for another name.
std::unique_ptr<Vmm> MakeVmm(const std::string& backend,
                             const std::string& accel,
                             const std::string& binary);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_BACKENDS_H_
