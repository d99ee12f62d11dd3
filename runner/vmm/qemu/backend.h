#ifndef FCVM_RUNNER_VMM_QEMU_BACKEND_H_
#define FCVM_RUNNER_VMM_QEMU_BACKEND_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/qemu/qmp.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner::qemu {

// QEMU as a VMM: the plan in fw_cfg (plan.json in the VM's directory), QMP
// on qmp.sock there, the serial console on stdio, guest RAM in a file of
// the VM's directory (memory-backend-file, shared). Pause and resume are
// QMP `stop` and `cont`. A snapshot is a migration with x-ignore-shared
// (CPU and device state only) into vmstate, plus a copy of the RAM file
// made while the VM is stopped; a restore maps that copy privately
// (share=off: clean pages shared between clones through the page cache)
// and loads the state with -incoming defer and migrate-incoming.
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
  [[nodiscard]] absl::StatusOr<SnapshotReport> Snapshot(
      const std::string& dir, const std::string& snapshot_dir) override;
  // QMP `quit`, then SIGKILL.
  void ForceStop(Subprocess& vmm, const std::string& dir) override;

 private:
  [[nodiscard]] absl::StatusOr<Subprocess> Launch(const VmSpec& spec,
                                                  const std::string& dir,
                                                  qemu::Launch launch);
  std::string accel_;
};

// The QMP socket in a VM's directory.
std::string QmpSocket(const std::string& dir);

// The two halves of a snapshot, for whoever drives a QEMU of their own
// (the backend; the stand-in firecracker): the stopped VM's CPU and device
// state (x-ignore-shared: not the RAM of a shared memory file) written to
// `fd` from its current offset, and loaded from `fd` from its current
// offset into a QEMU started with -incoming defer. Both return once QEMU
// says the migration completed.
// A QMP connection to a QEMU just started, retried until `timeout`;
// FailedPrecondition at once if QEMU exits first.
[[nodiscard]] absl::StatusOr<QmpClient> ConnectToStarting(
    Subprocess& qemu, const std::string& socket, absl::Duration timeout);
[[nodiscard]] absl::Status SaveDeviceState(QmpClient& qmp, int fd,
                                           absl::Duration timeout);
[[nodiscard]] absl::Status LoadDeviceState(QmpClient& qmp, int fd,
                                           absl::Duration timeout);

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_BACKEND_H_
