#ifndef FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_

#include <string>

#include "runner/vmm/vmm.h"

namespace fcvm::runner::firecracker {

// Firecracker as a VMM: started with its API on api.sock in the VM's
// directory, configured by ConfigureRequests (the plan in MMDS), then
// InstanceStart. Its serial console is its stdout, console input its stdin.
class FirecrackerVmm : public Vmm {
 public:
  explicit FirecrackerVmm(std::string binary = "firecracker")
      : binary_(std::move(binary)) {}

  std::string Describe() const override { return "firecracker"; }
  absl::StatusOr<Subprocess> Start(const VmSpec& spec,
                                   const std::string& dir) override;
  // Ctrl-Alt-Del (the guest reboots, which ends Firecracker), then SIGKILL.
  void ForceStop(Subprocess& vmm, const std::string& dir) override;

 private:
  std::string binary_;
};

}  // namespace fcvm::runner::firecracker

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_
