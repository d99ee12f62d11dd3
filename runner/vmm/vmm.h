#ifndef FCVM_RUNNER_VMM_VMM_H_
#define FCVM_RUNNER_VMM_VMM_H_

// A VMM backend: starts a VM from a spec (a cold boot, or a restore from a
// snapshot) with its serial console on the process's stdout and console
// input on its stdin; pauses, resumes and snapshots it through the VMM's
// control socket in the VM's directory; and ends it the hard way when the
// guest does not power off by itself. It also names the guest's devices,
// so nobody else guesses them.

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner {

// Where a restored VM's memory comes from.
enum class MemoryBackend {
  kFile,  // The snapshot's memory file, mapped privately: clean pages are
          // shared between clones through the page cache.
  kUffd,  // Served by the userfaultfd memory server (uffd/).
};

// A snapshot to restore instead of booting (the snapshot commands make
// them; see runner/snapshot/).
struct RestoreSource {
  std::string snapshot_dir;  // Device state and memory, as Snapshot wrote.
  MemoryBackend memory = MemoryBackend::kFile;
  std::string uffd_socket;  // kUffd: the memory server's socket.
  // Called once the VMM's process exists, before the state is loaded
  // (which takes a while): its owner records it then, so an owner killed
  // mid-restore leaves no VMM nobody knows of.
  std::function<void(pid_t)> started;
};

// The files of a snapshot directory, whichever backend wrote them.
inline constexpr char kSnapshotStateFile[] = "vmstate";  // CPUs and devices.
inline constexpr char kSnapshotMemoryFile[] = "memory";  // Guest RAM.
inline constexpr char kSnapshotDisk[] = "disk";  // The writable disk's copy.
// A running VM's RAM, in its directory, where the backend keeps it in a
// file (QEMU: so a snapshot can copy it while the VM is stopped).
inline constexpr char kVmMemoryFile[] = "memory";

// What Snapshot did, for the manifest and the numbers.
struct SnapshotReport {
  absl::Duration state_took;   // Device state written.
  absl::Duration memory_took;  // Memory frozen into the snapshot.
  std::string memory_method;   // "reflink", "sparse copy", "written".
};

// What a backend can do, for policy (`run`, `snapshot`) to decide on.
struct VmmCapabilities {
  bool pause = false;     // Pause and Resume.
  bool snapshot = false;  // Snapshot of a paused VM.
  bool restore_file = false;
  bool restore_uffd = false;
  bool user_network = false;  // A user-mode NIC without a TAP.
};

class Vmm {
 public:
  virtual ~Vmm() = default;

  // "qemu (tcg)", "firecracker", ... for messages and state.
  virtual std::string Describe() const = 0;
  virtual VmmCapabilities Capabilities() const = 0;

  // The guest's device for spec.disks(index): "/dev/vda", "/dev/vdb", ...
  virtual std::string GuestBlockDevice(int index) const = 0;

  // Boots the VM; `dir` is the VM's directory (sockets, plan, logs).
  [[nodiscard]] virtual absl::StatusOr<Subprocess> Start(
      const VmSpec& spec, const std::string& dir) = 0;
  // Restores the VM from a snapshot instead of booting it (same spec: the
  // snapshot's devices, this run's identity).
  [[nodiscard]] virtual absl::StatusOr<Subprocess> Restore(
      const VmSpec& spec, const std::string& dir,
      const RestoreSource& source) = 0;

  // Stops (Pause) and restarts (Resume) the vCPUs of the running VM whose
  // directory is `dir`.
  [[nodiscard]] virtual absl::Status Pause(const std::string& dir) = 0;
  [[nodiscard]] virtual absl::Status Resume(const std::string& dir) = 0;
  // Writes the paused VM's device state and memory into `snapshot_dir`
  // (an existing, empty directory): kSnapshotStateFile, kSnapshotMemoryFile.
  // The VM stays paused; nothing written there changes afterwards.
  [[nodiscard]] virtual absl::StatusOr<SnapshotReport> Snapshot(
      const std::string& dir, const std::string& snapshot_dir) = 0;

  // Ends a VM whose guest did not power off: the VMM's own way where it
  // has one, else SIGKILL.
  virtual void ForceStop(Subprocess& vmm, const std::string& dir) = 0;
};

// The guest block device name for drive `index` of a virtio-mmio machine
// that probes drives in order: /dev/vda, /dev/vdb, ..., /dev/vdz, /dev/vdaa.
std::string VirtioBlockDevice(int index);

// The VMM's command line: `argv` as is, or run through nsenter in the user
// and network namespaces of spec.netns_pid (rootless networking: the TAP
// lives there). Its uid stays the caller's, root inside that namespace.
std::vector<std::string> VmmCommand(const VmSpec& spec,
                                    std::vector<std::string> argv);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VMM_VMM_H_
