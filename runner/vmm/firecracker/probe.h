#ifndef FCVM_RUNNER_VMM_FIRECRACKER_PROBE_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_PROBE_H_

#include <string>

#include "absl/time/time.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner::firecracker {

// Whether `binary` runs `kernel` here: Firecracker boots it (one vCPU,
// 128 MiB, no drives) to its panic for want of a root filesystem; its API
// socket lives in a temporary directory under `scratch_dir`. Not cacheable
// when the binary is not installed.
VmmProbeResult ProbeKvmWithFirecracker(
    const std::string& binary, const std::string& arch,
    const std::string& kernel, const std::string& scratch_dir,
    absl::Duration timeout = absl::Seconds(20));

}  // namespace fcvm::runner::firecracker

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_PROBE_H_
