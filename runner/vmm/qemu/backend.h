#ifndef FCVM_RUNNER_VMM_QEMU_BACKEND_H_
#define FCVM_RUNNER_VMM_QEMU_BACKEND_H_

#include <string>

#include "runner/vmm/vmm.h"

namespace fcvm::runner::qemu {

// QEMU as a VMM: the plan in fw_cfg (plan.json in the VM's directory), QMP
// on qmp.sock there, the serial console on stdio.
class QemuVmm : public Vmm {
 public:
  explicit QemuVmm(std::string accel) : accel_(std::move(accel)) {}

  std::string Describe() const override;
  absl::StatusOr<Subprocess> Start(const VmSpec& spec,
                                   const std::string& dir) override;
  void ForceStop(Subprocess& vmm, const std::string& dir) override;

 private:
  std::string accel_;
};

// "kvm" only when a guest demonstrably runs under it here: the kernel
// boots to its panic for want of a root filesystem (a few seconds under a
// working KVM; a broken one fails at once or hangs). Remembered per kernel
// in `cache_dir`. `requested` "kvm"/"tcg" is taken as given; `why` says how
// "auto" was decided.
std::string ChooseAccel(const std::string& requested, const std::string& arch,
                        const std::string& kernel, const std::string& cache_dir,
                        std::string* why);

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_BACKEND_H_
