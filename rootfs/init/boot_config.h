#ifndef FCVM_ROOTFS_INIT_BOOT_CONFIG_H_
#define FCVM_ROOTFS_INIT_BOOT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::init {

// What the init takes from the kernel command line. Only `fcvm.*`
// parameters are ours; everything else belongs to the kernel.
struct BootConfig {
  // The per-VM writable disk (fcvm.disk=). Blank -> formatted ext4.
  std::string disk = "/dev/vdb";
  // The guest agent (fcvm.agent=). "shell", or an agent missing from the
  // image, starts a shell on the console instead (debugging, image tests).
  // fcvm.plan= is the agent's; the init accepts it and leaves it alone.
  std::string agent = "/usr/sbin/fc-agent";
  std::string hostname = "fcvm";  // fcvm.hostname=
};

// Parses /proc/cmdline. Unknown `fcvm.` parameters and empty values are
// errors naming the parameter: a typo must not boot a VM that silently
// ignores it.
[[nodiscard]] absl::StatusOr<BootConfig> ParseBootConfig(
    absl::string_view cmdline);

}  // namespace fcvm::init

#endif  // FCVM_ROOTFS_INIT_BOOT_CONFIG_H_
