#ifndef FCVM_RUNNER_STORAGE_OCI_IMAGE_H_
#define FCVM_RUNNER_STORAGE_OCI_IMAGE_H_

// What the runner needs to know about a local OCI archive before the VM
// boots: the ports its image exposes (published automatically when the
// user published none).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner {

// The first image of the archive's index.json: its config's ExposedPorts
// ("80/tcp"), as guest ports (host_port left 0). Errors name the archive
// and what is missing or malformed.
[[nodiscard]] absl::StatusOr<std::vector<PublishedPort>> ExposedPorts(
    const std::string& archive);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STORAGE_OCI_IMAGE_H_
