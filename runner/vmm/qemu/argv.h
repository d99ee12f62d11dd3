#ifndef FCVM_RUNNER_VMM_QEMU_ARGV_H_
#define FCVM_RUNNER_VMM_QEMU_ARGV_H_

// A VM spec as a QEMU command line: `microvm` (x86_64) or `virt` (aarch64),
// virtio-mmio devices only, like Firecracker's machine, the plan in fw_cfg.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner::qemu {

// How this run of QEMU is wired, beyond what the VM is.
struct Launch {
  std::string accel = "tcg";  // "kvm" or "tcg".
  // The serial console as a QEMU chardev: "stdio", "file:PATH", ...
  std::string console = "stdio";
  std::string qmp_socket;  // QMP server on this Unix socket; empty: none.
  // The plan's JSON, as fw_cfg opt/fcvm/plan; empty: none.
  std::string plan_file;
  // More fw_cfg files: name -> host path.
  std::vector<std::pair<std::string, std::string>> fw_cfg;
  // Guest RAM in this file (memory-backend-file) instead of anonymous
  // memory; empty: anonymous. Shared (MAP_SHARED, the VM's own RAM, which a
  // snapshot can copy while the VM is stopped) or private (MAP_PRIVATE, a
  // clone's view of a snapshot's memory: clean pages stay shared in the
  // page cache, writes are the clone's own).
  std::string memory_file;
  bool memory_shared = true;
  // Start with -incoming defer: the VM's state comes by migrate-incoming.
  bool incoming = false;
  // The agent's control channel: a virtio-serial port whose host end is
  // a Unix socket QEMU listens on; empty: none.
  std::string channel_socket;
};

// The console and platform arguments QEMU's guests need. Without ACPI the
// x86 kernel finds fw_cfg only where it is told: QEMU's standard I/O ports.
std::string PlatformBootArgs(const std::string& arch, bool fw_cfg);

// `value` escaped for QEMU's option syntax ("a,b" -> "a,,b"), so a path
// with a comma stays one value instead of ending the option or adding
// others ("-v /x,readonly=off:/y").
std::string QemuOptValue(absl::string_view value);

// The size plan.json is padded to for a plan whose JSON is `json_size`
// bytes: the next multiple of 4 KiB above it. A clone's plan replaces its
// snapshot's in fw_cfg, and Linux's fw_cfg sysfs driver (aarch64 virt)
// keeps each file's size from boot, so a clone's padded plan must be its
// snapshot's size. JSON ignores the trailing blanks.
inline size_t PaddedPlanSize(size_t json_size) {
  constexpr size_t kBlock = 4096;
  return (json_size / kBlock + 1) * kBlock;
}

// qemu-system-<arch> argv. Fails on a spec QEMU cannot take, naming it.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> QemuArgv(
    const VmSpec& spec, const Launch& launch);

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_ARGV_H_
