#ifndef FCVM_RUNNER_VM_PREFLIGHT_H_
#define FCVM_RUNNER_VM_PREFLIGHT_H_

// `fcvm preflight`: what this machine can run, and why not, checked the
// way `run` will use it: the VMMs, KVM asked directly and through each
// installed VMM (the verdicts `run` remembers), TAP devices, libnftables
// (which the runner links; it never runs the nft binary), user namespaces
// and the rootless helpers, the state directory.

#include <string>
#include <vector>

#include "runner/vm/host_facts.h"

namespace fcvm::runner {

struct PreflightLine {
  bool ok = false;
  std::string what;
  std::string detail;
};

struct PreflightReport {
  std::vector<PreflightLine> lines;
  // A VM can run: QEMU is installed, or Firecracker with KVM that runs a
  // guest.
  bool usable = false;
};

PreflightReport RunPreflight(const FactsRequest& request);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_PREFLIGHT_H_
