#ifndef FCVM_AGENT_IDENTITY_H_
#define FCVM_AGENT_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/plan.pb.h"

namespace fcvm::agent {

struct IdentityOptions {
  std::string root = "/";  // Where /etc lives (tests use a temp dir).
  std::string interface = "eth0";
  // Touch the kernel (hostname, network, entropy, clock). Off in unit
  // tests that only check the files.
  bool kernel = true;
};

struct IdentityReport {
  std::string summary;  // One line for the status message.
  absl::Duration took;
};

// Makes the VM what the plan says it is: entropy first (so a generated
// machine-id differs between clones), then the clock, hostname
// (+ /etc/hostname, /etc/hosts), /etc/machine-id, network (MAC, address,
// default route; link-local addresses and the MMDS route survive) and
// /etc/resolv.conf. Run at boot and again for every new generation.
[[nodiscard]] absl::StatusOr<IdentityReport> ApplyIdentity(
    const Plan& plan, const IdentityOptions& options);

// Credits `bytes` to the kernel's entropy pool and forces a CRNG reseed.
[[nodiscard]] absl::Status AddEntropy(const std::string& bytes);

// Steps CLOCK_REALTIME forward to `host_time` if it is behind by more than
// `slack`; returns the step taken (0 when none). Never backwards: the host's
// time is when it wrote the plan, so "now" is at least that (a plan read
// at boot is as old as the boot), while a restored clone's clock is behind
// by the snapshot's age.
[[nodiscard]] absl::StatusOr<absl::Duration> StepClock(absl::Time host_time,
                                                       absl::Duration slack);

// A random machine-id (32 lowercase hex digits) from getrandom(2).
[[nodiscard]] absl::StatusOr<std::string> RandomMachineId();

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_IDENTITY_H_
