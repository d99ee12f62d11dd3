#ifndef FCVM_RUNNER_SNAPSHOT_MACHINE_H_
#define FCVM_RUNNER_SNAPSHOT_MACHINE_H_

// What a restore must match: the machine a VM's state describes (machine
// type, CPU model, the devices in order), the VMM's version, and the files
// a snapshot depends on. The same description is made for the snapshot and
// for each clone, and compared field by field.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner {

struct MachineDescription {
  std::string machine;  // "microvm", "virt", "firecracker".
  std::string cpu_model;
  std::vector<std::string> devices;
};

// Pure.
MachineDescription DescribeMachine(const VmState& state);

// The first line of `binary --version` ("QEMU emulator version 7.2.22
// (Debian ...)", "Firecracker v1.16.1"); the error names the binary.
[[nodiscard]] absl::StatusOr<std::string> VmmVersion(const std::string& binary);

// An input file as it is now, hashed; or, when `known` holds the same
// path with the same size and mtime (another snapshot's manifest), its
// hash (the rule a clone's check trusts too): base.ext4 is hashed once,
// not at every snapshot.
[[nodiscard]] absl::StatusOr<InputFile> DescribeInput(
    const std::string& role, const std::string& path,
    const std::vector<InputFile>& known = {});

// A file the snapshot holds, as it is now.
[[nodiscard]] absl::StatusOr<HeldFile> DescribeHeld(const std::string& dir,
                                                    const std::string& name);

// What the host must still be for `manifest` to be restored here, as found
// now (I/O: stat, hash where a stat differs, the VMM's --version).
struct HostNow {
  std::string host_arch;
  std::string vmm_version;  // Empty: the VMM is missing (vmm_error says).
  std::string vmm_error;
  std::vector<absl::StatusOr<InputFile>> inputs;  // As manifest.inputs.
  std::vector<absl::StatusOr<HeldFile>> files;    // As manifest.files.
};
[[nodiscard]] HostNow ObserveHost(const SnapshotManifest& manifest,
                                  const std::string& snapshot_dir);

// Pure: FailedPrecondition naming the snapshot, the field, the value
// expected and the one found, for the first difference.
[[nodiscard]] absl::Status CheckRestorable(const SnapshotManifest& manifest,
                                           const HostNow& now);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_MACHINE_H_
