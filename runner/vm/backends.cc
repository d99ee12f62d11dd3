#include "runner/vm/backends.h"

#include "runner/vmm/firecracker/backend.h"
#include "runner/vmm/qemu/backend.h"

namespace fcvm::runner {

std::unique_ptr<Vmm> MakeVmm(const std::string& backend,
                             const std::string& accel,
                             const std::string& binary) {
  if (backend == kQemu) return std::make_unique<qemu::QemuVmm>(accel);
  if (backend == kFirecracker) {
    return std::make_unique<firecracker::FirecrackerVmm>(
        binary.empty() ? "firecracker" : binary);
  }
  return nullptr;
}

}  // namespace fcvm::runner
