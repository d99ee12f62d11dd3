#ifndef FCVM_RUNNER_VMM_KVM_H_
#define FCVM_RUNNER_VMM_KVM_H_

// Whether KVM runs a guest on this host, asked of KVM itself and of the
// VMM that will use it, with the verdict remembered.
//
// The direct probe opens /dev/kvm, creates a VM with one page of code and
// one vCPU, and runs it: x86_64 writes a byte to a serial port in real mode
// and halts (KVM_EXIT_IO, then KVM_EXIT_HLT); aarch64 stores to an address
// with no memory behind it (KVM_EXIT_MMIO). It needs no VMM, so it works on
// a Firecracker-only host. It cannot see everything a real guest meets (a
// nested hypervisor here runs the stub but fails a Linux kernel), so the
// chosen VMM's own probe (boot the guest kernel to its panic) follows it.

#include <functional>
#include <string>

#include "absl/time/time.h"

namespace fcvm::runner {

struct KvmVerdict {
  bool works = false;
  std::string why;  // "works: ...", "broken: ...", "/dev/kvm: ...".
};

// The direct probe, for the host's CPU. Runs in a child process so a hung
// KVM_RUN cannot hang the caller (`timeout`).
KvmVerdict ProbeKvmDirectly(absl::Duration timeout = absl::Seconds(5));

// What a VMM-level probe found; `cacheable` is false when it could not ask
// (the VMM is not installed): that is never remembered.
struct VmmProbeResult {
  KvmVerdict verdict;
  bool cacheable = true;
};

struct KvmCheck {
  std::string arch;        // The guest's CPU; KVM only for the host's own.
  std::string kernel;      // The guest kernel the VMM probe boots.
  std::string vmm;         // "qemu" or "firecracker", for the cache key.
  std::string vmm_binary;  // The VMM's executable, for the cache key.
  std::string cache_dir;   // Verdicts are files here; empty: no cache.
  // Boots `kernel` under KVM with the VMM (runner/vmm/qemu/probe.h,
  // runner/vmm/firecracker/probe.h).
  std::function<VmmProbeResult()> vmm_probe;
  // The direct probe; empty: ProbeKvmDirectly (tests give their own).
  std::function<KvmVerdict()> direct_probe;
};

// The verdict for running `check.kernel` under `check.vmm` with KVM: the
// direct probe, then the VMM's. Remembered in cache_dir under a key of the
// host kernel, the KVM device (device number, inode, change time), the
// guest kernel and the VMM binary (path, size, mtime), so an upgrade of any
// of them asks again.
KvmVerdict CheckKvm(const KvmCheck& check);

// The host's CPU as Linux names it ("x86_64", "aarch64").
std::string HostArch();

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VMM_KVM_H_
