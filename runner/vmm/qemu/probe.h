#ifndef FCVM_RUNNER_VMM_QEMU_PROBE_H_
#define FCVM_RUNNER_VMM_QEMU_PROBE_H_

#include <string>

#include "absl/time/time.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner::qemu {

// Whether QEMU runs `kernel` under KVM here: it boots to its panic for want
// of a root filesystem (a few seconds under a working KVM; a broken one
// fails at once or hangs). Not cacheable when QEMU is not installed.
VmmProbeResult ProbeKvmWithQemu(const std::string& arch,
                                const std::string& kernel,
                                absl::Duration timeout = absl::Seconds(20));

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_PROBE_H_
