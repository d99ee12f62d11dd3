#ifndef FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_

#include <string>

#include "runner/vmm/vmm.h"

namespace fcvm::runner::firecracker {

// Firecracker as a VMM: started with its API on api.sock in the VM's
// directory, configured by ConfigureRequests (the plan in MMDS), then
// InstanceStart. Its serial console is its stdout, console input its stdin.
// Pause and resume are PATCH /vm. It runs in a mount namespace of its own
// with the VM's directory at spec.vmm_root() (vm_spec.proto). A snapshot
// is PUT /snapshot/create of the paused VM; a restore starts a fresh
// Firecracker in the clone's own namespace (where its disk has the
// original's path), PUT /snapshot/load (File memory, or Uffd from the
// memory server; network_overrides for the clone's TAP, 1.12+), fills
// MMDS with the clone's plan (MMDS is not in a snapshot) and resumes.
class FirecrackerVmm : public Vmm {
 public:
  explicit FirecrackerVmm(std::string binary = "firecracker")
      : binary_(std::move(binary)) {}

  std::string Describe() const override { return "firecracker"; }
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
  // SIGKILL. Firecracker has no request that ends the VM: SendCtrlAltDel
  // exists on x86_64 only, and fcvm-init takes Ctrl-Alt-Del as one more
  // graceful stop (it is what `stop` already asked for, and it did not
  // come). The guest's sync was asked for by that graceful stop.
  void ForceStop(Subprocess& vmm, const std::string& dir) override;

 private:
  std::string binary_;
};

// The API socket in a VM's directory.
std::string ApiSocket(const std::string& dir);

}  // namespace fcvm::runner::firecracker

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_BACKEND_H_
