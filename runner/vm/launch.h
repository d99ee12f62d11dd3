#ifndef FCVM_RUNNER_VM_LAUNCH_H_
#define FCVM_RUNNER_VM_LAUNCH_H_

// `fcvm run` as a plan: which backend and accelerator, which network, which
// drives, the VM spec and the agent's plan, all decided from the flags and
// facts about the host, with no I/O (host_facts.h gathers the facts), so
// every policy is unit-tested without a process or a file. The plan is
// checked with the agent's own checks here, on the host: a name the guest
// would refuse as its hostname fails in milliseconds, not after a boot.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rootfs/image/oci.pb.h"
#include "runner/net/subnet.h"
#include "runner/state/state.pb.h"
#include "runner/storage/volume.h"
#include "runner/vm/run_flags.h"
#include "runner/vmm/kvm.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {

// What a volume's host path is.
enum class VolumeKind { kMissing, kDirectory, kFile, kBlockDevice, kOther };

struct VolumeFact {
  VolumeKind kind = VolumeKind::kMissing;
  std::string error;  // kMissing: why stat failed.
};

struct HostFacts {
  std::string host_arch;   // "x86_64", "aarch64".
  std::string guest_arch;  // --arch (default: the host's).
  uid_t euid = 0;
  std::string state_root;  // VM directories are <state_root>/vms/<name>.
  // The guest's kernel and base.ext4 for guest_arch.
  std::string kernel, rootfs;
  std::string assets;  // Where they came from (Assets::source).
  // The image as a local OCI archive (one built by the pipeline, or a file
  // the user named), with the ports its config exposes and a free host
  // port for each (by guest port); empty archive: pulled in the VM.
  std::string image_archive;
  // Or the image as a root filesystem the pipeline baked (ext4,
  // --image-rootfs), run with the config of its OCI archive: then
  // image_archive is empty (nothing to load).
  std::string image_rootfs;
  rootfs::oci::ContainerConfig image_config;
  std::vector<PublishedPort> exposed_ports;
  std::map<uint32_t, uint32_t> free_host_ports;
  // VMMs and KVM. A verdict is only filled where it can matter (a backend
  // that is installed and not ruled out by the flags).
  bool qemu = false;        // qemu-system-<guest_arch> installed.
  std::string firecracker;  // Its executable, empty when not installed.
  KvmVerdict kvm_qemu, kvm_firecracker;
  // Rootless network helpers installed.
  bool pasta = false, slirp4netns = false;
  std::vector<std::string> nameservers;  // The host's, loopback ones left out.
  std::map<std::string, VolumeFact> volumes;  // By host path.
};

// The random parts of a run, drawn by the caller (getrandom: a failure
// there is an error, never a constant).
struct LaunchSeeds {
  std::string id;           // 16 hex digits.
  std::string name_suffix;  // 4 hex digits.
  std::string machine_id;   // 32 hex digits.
  std::string entropy;      // 32 bytes for the guest's entropy pool.
  int64_t now_unix_ms = 0;
};

// A volume that needs preparing on the host once the VM's directory exists
// (directories are copied into ext4 images).
struct VolumeToPrepare {
  VolumeFlag flag;
  int index = 0;  // volume-<index>.ext4
  int disk = 0;   // spec.disks(disk) is its drive.
  VolumeKind kind = VolumeKind::kFile;
};

struct Launch {
  // The state to write before boot: name, id, phase CREATING, backend and
  // accelerator with the reasons, image, ports, network mode and DNS, the
  // VM spec with the agent's plan, the disk's path. A TAP network's
  // addresses come from ApplySubnet.
  VmState state;
  std::vector<VolumeToPrepare> volumes;
  bool detach = false;
  // The writable disk starts as a copy of this file (a clone's: its
  // snapshot's disk); empty: blank.
  std::string disk_template;
  // Restore this snapshot instead of booting (a clone).
  std::optional<RestoreSource> restore;
  // Called once the VM exists (claimed, lease held, disk made): a clone
  // served by a memory server holds the server's start lock until then,
  // so the server cannot judge itself unused in between.
  std::function<void()> created;
};

[[nodiscard]] absl::StatusOr<Launch> PlanLaunch(const RunFlags& flags,
                                                const HostFacts& facts,
                                                const LaunchSeeds& seeds);

// What a run's flags say about keeping the VM, into its state: --label,
// --timeout (counted from `now_unix_ms`), --rm, --api-template. Every way
// of starting a VM from flags (an image, a template) applies it.
void ApplyKeeping(const RunFlags& flags, int64_t now_unix_ms, VmState& state);

// Gives a TAP-mode launch its /30 (chosen under the store's lock): the
// network state, the NIC, the guest's network identity; then checks the
// plan again. Pure.
[[nodiscard]] absl::Status ApplySubnet(const Subnet& subnet, Launch& launch);

// The plan as the agent will read it, checked with the agent's own checks
// and words, naming the VM.
[[nodiscard]] absl::Status CheckPlan(const VmState& state);

agent::PortMapping ToPlanPort(const PublishedPort& port);

// "docker.io/library/my_app:1.25" -> "my-app-<suffix>": a valid VM name.
std::string NameFromImage(const std::string& image, const std::string& suffix);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_LAUNCH_H_
