#ifndef FCVM_RUNNER_CACHE_KEY_H_
#define FCVM_RUNNER_CACHE_KEY_H_

// The startup cache's key: everything that shapes the guest before its
// container is ready, and nothing that is one run's own (its name,
// hostname, host ports, machine-id, entropy, clock, addresses). Two runs
// with the same key boot the same guest to the same ready state, so the
// second can start as a clone of the first's snapshot.
//
// In the key: the VMM (backend, binary, version), the accelerator, the
// machine (type, CPU model, devices in order), vCPUs, memory, the network
// mode (the control channel follows from the backend); the kernel and every
// read-only drive (the base image with its agent, the image archive or baked
// image, read-only volumes) by sha256; the container's image, command, args,
// env, user, working directory, guest ports, resources, restart policy,
// readiness, stop timeout and `stay`.
//
// Not cacheable (a reason is given): an image pulled from a registry by
// tag (its digest is only known after the pull; an `image@sha256:` one is
// cacheable), and volumes (a clone cannot restore them yet).

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner {

// The sha256 (hex) of the file at `path`; `role` names it in errors.
using Digester = std::function<absl::StatusOr<std::string>(
    const std::string& role, const std::string& path)>;

// The key of a VM about to be created (its state as planned: spec, plan,
// backend, accelerator, vmm_version). FailedPrecondition with the reason
// when the run is not cacheable. Pure but for `digest`.
[[nodiscard]] absl::StatusOr<CacheKey> ComputeCacheKey(
    const VmState& state, const std::string& vmm_version,
    const Digester& digest);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CACHE_KEY_H_
