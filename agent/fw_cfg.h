#ifndef FCVM_AGENT_FW_CFG_H_
#define FCVM_AGENT_FW_CFG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::agent {

// QEMU's fw_cfg read straight through its I/O ports, for x86 guests booted
// without ACPI (QEMU microvm,acpi=off): there Linux 6.1's qemu_fw_cfg
// driver refuses every read ("Failed to lock ACPI!") because it takes the
// ACPI global lock first, so /sys/firmware/qemu_fw_cfg stays empty. The
// VMM announces the device on the command line (qemu_fw_cfg.ioport=...),
// which is also what tells the agent the ports are safe to touch.

struct FwCfgPorts {
  uint16_t selector = 0x510;  // base + ctrl_off: 16-bit key, written.
  uint16_t data = 0x511;      // base + data_off: bytes, read.
};

// Parses "qemu_fw_cfg.ioport=<size>@<base>[:<ctrl_off>:<data_off>[:...]]"
// from a kernel command line; NOT_FOUND when it is not there.
[[nodiscard]] absl::StatusOr<FwCfgPorts> FwCfgPortsFromCmdline(
    absl::string_view cmdline);

// One entry of the fw_cfg file directory (key 0x19), parsed from its
// 64-byte big-endian record. Exposed for tests.
struct FwCfgFile {
  uint32_t size;
  uint16_t select;
  std::string name;
};
FwCfgFile ParseFwCfgFileRecord(const unsigned char record[64]);

// Reads the fw_cfg file `name` (e.g. "opt/fcvm/plan") through the ports:
// checks the "QEMU" signature, walks the file directory, reads the file.
// Needs CAP_SYS_RAWIO (ioperm); x86 only (UNIMPLEMENTED elsewhere).
[[nodiscard]] absl::StatusOr<std::string> ReadFwCfgFileViaPorts(
    const FwCfgPorts& ports, absl::string_view name);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_FW_CFG_H_
