#ifndef FCVM_RUNNER_VMM_QEMU_BACKEND_H_
#define FCVM_RUNNER_VMM_QEMU_BACKEND_H_

#include <string>

#include "runner/vmm/vmm.h"

namespace fcvm::runner::qemu {

// QEMU as a VMM: the plan in fw_cfg (plan.json in the VM's directory), QMP
// on qmp.sock there, the serial console on stdio. Pause and resume are QMP
// `stop` and `cont`. Snapshots and restores come with the snapshot
// commands (runner/snapshot/); until then they are refused, and
// Capabilities says so.
class QemuVmm : public Vmm {
 public:
  explicit QemuVmm(std::string accel) : accel_(std::move(accel)) {}

  std::string Describe() const override;
  VmmCapabilities Capabilities() const override;
  std::string GuestBlockDevice(int index) const override;
  [[nodiscard]] absl::StatusOr<Subprocess> Start(
      const VmSpec& spec, const std::string& dir) override;
  [[nodiscard]] absl::StatusOr<Subprocess> Restore(
      const VmSpec& spec, const std::string& dir,
      const RestoreSource& source) override;
  [[nodiscard]] absl::Status Pause(const std::string& dir) override;
  [[nodiscard]] absl::Status Resume(const std::string& dir) override;
  [[nodiscard]] absl::Status Snapshot(const std::string& dir,
                                      const std::string& snapshot_dir) override;
  // QMP `quit`, then SIGKILL.
  void ForceStop(Subprocess& vmm, const std::string& dir) override;

 private:
  std::string accel_;
};

// The QMP socket in a VM's directory.
std::string QmpSocket(const std::string& dir);

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_BACKEND_H_
