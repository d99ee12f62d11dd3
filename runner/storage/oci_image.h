#ifndef FCVM_RUNNER_STORAGE_OCI_IMAGE_H_
#define FCVM_RUNNER_STORAGE_OCI_IMAGE_H_

// What the runner needs to know about a local OCI archive before the VM
// boots: the ports its image exposes (published automatically when the
// user published none), and the whole container config, which a baked root
// filesystem of the same image runs with (the archive stays its one source
// of truth).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rootfs/image/oci.pb.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner {

// The first image of the archive's index.json: its config's "config"
// object (Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts,
// StopSignal). Errors name the archive and what is missing or malformed.
[[nodiscard]] absl::StatusOr<rootfs::oci::ContainerConfig> ImageConfig(
    const std::string& archive);

// The config's ExposedPorts ("80/tcp") as guest ports (host_port left 0),
// by port; `archive` names the source in errors.
[[nodiscard]] absl::StatusOr<std::vector<PublishedPort>> ExposedPorts(
    const rootfs::oci::ContainerConfig& config, const std::string& archive);

// The first image of the archive's index.json: its config's ExposedPorts
// ("80/tcp"), as guest ports (host_port left 0). Errors name the archive
// and what is missing or malformed.
[[nodiscard]] absl::StatusOr<std::vector<PublishedPort>> ExposedPorts(
    const std::string& archive);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STORAGE_OCI_IMAGE_H_
