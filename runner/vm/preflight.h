#ifndef FCVM_RUNNER_VM_PREFLIGHT_H_
#define FCVM_RUNNER_VM_PREFLIGHT_H_

// `fcvm preflight`: what this machine can run, and why not, checked the
// way `run` will use it: the VMMs, KVM asked directly and through each
// installed VMM (the verdicts `run` remembers), TAP devices, libnftables
// (which the runner links; it never runs the nft binary), user namespaces
// and the rootless helpers, the state directory.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runner/vm/host_facts.h"
#include "runner/vmm/kvm.h"

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
  // Debian packages that would give what is missing (qemu-system-x86,
  // passt, nftables), in the order found.
  std::vector<std::string> missing_packages;
};

// Gathers the facts (GatherHostFacts, the direct KVM probe, nftables, the
// state directory) and describes them.
PreflightReport RunPreflight(const FactsRequest& request);

// What preflight checks beyond HostFacts.
struct PreflightFacts {
  HostFacts host;
  absl::Status gathered;        // Why `host` could not be gathered, if not.
  bool have_kernel = false;     // The VMM-level KVM verdicts were asked.
  KvmVerdict direct;            // ProbeKvmDirectly().
  bool tun = false;             // /dev/net/tun usable.
  absl::Status nftables;        // net::CheckNftables().
  std::string user_namespaces;  // /proc/sys/user/max_user_namespaces.
  bool root = false;
  std::string state_root;
  absl::Status state;  // EnsurePrivateDir(state_root).
  bool nft = false;    // The nft command (Debian's nftables) is installed.
  // The guest's assets: where they come from (Assets::source), and whether
  // a kernel and base.ext4 were found.
  std::string assets;
  bool have_assets = false;
};

// The report for `facts`. Pure.
PreflightReport DescribePreflight(const PreflightFacts& facts);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_PREFLIGHT_H_
