#ifndef FCVM_RUNNER_VM_RUN_FLAGS_H_
#define FCVM_RUNNER_VM_RUN_FLAGS_H_

// `fcvm run [FLAGS] IMAGE [COMMAND [ARG...]]`, with Podman's flags where
// Podman has them: flags end at IMAGE; what follows goes to the container.
// The flags are declared once, on a CLI11 app (AddRunFlags), so `fcvm run
// --help` lists them; values are checked here, every error naming the flag
// and the value.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "agent/plan.pb.h"
#include "runner/storage/volume.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner {

struct RunFlags {
  std::string name;  // Empty: the runner picks one.
  std::string image;
  std::vector<std::string> args;        // Replace the image's command.
  std::vector<std::string> entrypoint;  // Replaces the image's entrypoint.
  std::vector<PublishedPort> ports;
  std::vector<VolumeFlag> volumes;
  std::map<std::string, std::string> env;
  std::string workdir;
  std::string user;
  uint32_t cpus = 1;
  uint32_t memory_mib = 512;
  bool detach = false;
  agent::RestartPolicy restart = agent::RESTART_NO;
  uint32_t stop_timeout_seconds = 10;
  std::string backend = "auto";  // auto | firecracker | qemu
  std::string accel = "auto";    // auto | kvm | tcg
  // auto | tap | user | pasta | slirp4netns | rootless (the installed one
  // of those two) | none.
  std::string network = "auto";
  // Each of console.log and container.log keeps this much, plus one
  // rotated generation.
  uint64_t log_max_bytes = uint64_t{8} << 20;
  // The startup-snapshot cache (runner/cache/): --no-cache boots cold and
  // stores nothing.
  bool no_cache = false;
  // --template NAME: start from the snapshot `fcvm template build` made
  // (no IMAGE then: the template's).
  std::string template_name;
  // --label KEY=VALUE (Podman's): kept in the VM's state, shown by
  // inspect; `fcvm api` serves them as a sandbox's metadata.
  std::map<std::string, std::string> labels;
  // --timeout SECONDS (Podman's): the VM's supervisor stops it this long
  // after the start (0: never); `fcvm api` moves the end (E2B's
  // setTimeout) over the control socket.
  uint32_t timeout_seconds = 0;
  // --rm (Podman's): the VM's directory is removed once it has ended.
  bool remove_on_exit = false;
  // Hidden, for `fcvm api`'s create: the E2B template the sandbox was asked
  // for.
  std::string api_template;
};

// The values as CLI11 collects them, before checking.
struct RunFlagValues {
  std::string name, cpus = "1", memory = "512m", restart = "no",
                    backend = "auto", accel = "auto", network = "auto", workdir,
                    user, entrypoint, log_max_size = "8m";
  std::vector<std::string> publish, volume, env;
  uint32_t stop_timeout = 10;
  bool detach = false;
  bool no_cache = false;
  std::string template_name;
  std::vector<std::string> label;
  uint32_t timeout = 0;
  bool rm = false;
  std::string api_template;
};

// Declares run's flags on `app` (a prefix command: parsing stops at IMAGE,
// and app.remaining() is IMAGE and the container's arguments).
void AddRunFlags(CLI::App& app, RunFlagValues* values);

// Checks the values and the remaining words. `getenv` resolves `-e NAME`
// (no '='), as Podman does; `resolve` makes a relative volume path
// absolute (against the caller's working directory, which `bazel run`
// does not start us in).
[[nodiscard]] absl::StatusOr<RunFlags> FinishRunFlags(
    const RunFlagValues& values, const std::vector<std::string>& remaining,
    const std::function<const char*(const char*)>& getenv,
    const std::function<std::string(const std::string&)>& resolve);

// The two above on a throwaway app, for tests and callers without one.
[[nodiscard]] absl::StatusOr<RunFlags> ParseRunFlags(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv);

// "8080:80", "8080:80/udp", "80" (the same port on both sides).
[[nodiscard]] absl::StatusOr<PublishedPort> ParsePublish(
    const std::string& value);
// "/host:/guest", "/host:/guest:ro", "./dir:/guest:ro" (made absolute by
// `resolve`).
[[nodiscard]] absl::StatusOr<VolumeFlag> ParseVolume(
    const std::string& value,
    const std::function<std::string(const std::string&)>& resolve);
// Podman's units: "512m", "2g", "1073741824" (bytes), whole MiB, >= 64 MiB.
[[nodiscard]] absl::StatusOr<uint32_t> ParseMemoryMib(const std::string& value);
// "8m", "64k", "1g", "1000000" (bytes), at least 64 KiB.
[[nodiscard]] absl::StatusOr<uint64_t> ParseByteSize(const std::string& flag,
                                                     const std::string& value);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_RUN_FLAGS_H_
