#ifndef FCVM_RUNNER_VM_RUN_FLAGS_H_
#define FCVM_RUNNER_VM_RUN_FLAGS_H_

// `fcvm run [FLAGS] IMAGE [COMMAND [ARG...]]`, with Podman's flags where
// Podman has them: flags end at IMAGE; what follows goes to the container.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/plan.pb.h"

namespace fcvm::runner {

struct VolumeFlag {
  std::string host_path;  // Absolute: a directory, a file or a block device.
  std::string guest_path;
  bool read_only = false;
};

struct RunFlags {
  std::string name;  // Empty: the runner picks one.
  std::string image;
  std::vector<std::string> args;  // Replace the image's command.
  std::vector<agent::PortMapping> ports;
  std::vector<VolumeFlag> volumes;
  std::map<std::string, std::string> env;
  uint32_t cpus = 1;
  uint32_t memory_mib = 512;
  bool detach = false;
  agent::RestartPolicy restart = agent::RESTART_NO;
  std::string backend = "auto";  // auto | firecracker | qemu
  std::string accel = "auto";    // QEMU: auto | kvm | tcg
  // auto | tap | user | pasta | slirp4netns | rootless (the installed one
  // of those two) | none.
  std::string network = "auto";
};

// `getenv` resolves `-e NAME` (no '='), as Podman does; tests pass their
// own. Every error names the flag and the value.
absl::StatusOr<RunFlags> ParseRunFlags(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv);

// "8080:80", "8080:80/udp", "80" (the same port on both sides).
absl::StatusOr<agent::PortMapping> ParsePublish(const std::string& value);
// "/host:/guest", "/host:/guest:ro".
absl::StatusOr<VolumeFlag> ParseVolume(const std::string& value);
// Podman's units: "512m", "2g", "1073741824" (bytes), whole MiB, >= 64 MiB.
absl::StatusOr<uint32_t> ParseMemoryMib(const std::string& value);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_RUN_FLAGS_H_
