#ifndef FCVM_RUNNER_VMM_H_
#define FCVM_RUNNER_VMM_H_

// A VMM backend: starts a VM from a spec with its serial console on the
// process's stdout (and console input on its stdin), and stops it the hard
// way when the guest does not power off by itself.

#include <string>

#include "absl/status/statusor.h"
#include "base/subprocess.h"
#include "runner/vm_spec.pb.h"

namespace fcvm::runner {

class Vmm {
 public:
  virtual ~Vmm() = default;

  // "qemu (tcg)", "firecracker 1.16.1", ... for messages and state.
  virtual std::string Describe() const = 0;
  // Starts the VM; `dir` is the VM's directory (sockets, plan, logs).
  virtual absl::StatusOr<Subprocess> Start(const VmSpec& spec,
                                           const std::string& dir) = 0;
  // Ends a VM whose guest did not power off (VMM's own way first).
  virtual void ForceStop(Subprocess& vmm, const std::string& dir) = 0;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VMM_H_
