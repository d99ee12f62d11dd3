#ifndef FCVM_RUNNER_VMM_FIRECRACKER_REQUESTS_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_REQUESTS_H_

// A VM spec as the sequence of Firecracker API requests that configure and
// start it. Pure: building the requests talks to nobody, so unit tests and
// the contract test (every body against Firecracker's own API
// specification) see exactly what the backend sends.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::runner::firecracker {

struct ApiRequest {
  std::string method;  // "PUT", "PATCH" or "GET".
  std::string path;    // e.g. "/drives/vda".
  std::string body;    // JSON; empty for GET.
};

// A typed body printed the way Firecracker reads it (the API's field names,
// unset fields left out), the same bytes every time (map keys sorted).
std::string ToJson(const google::protobuf::Message& body);

// Where the guest finds its plan under Firecracker: MMDS V2 when the VM
// has a NIC (the agent's first choice that can change, for clones), else
// the kernel command line.
inline constexpr char kMmdsPlanKey[] = "plan";  // At /fcvm/plan.

// The console and platform arguments Firecracker's guests need, for `arch`.
std::string PlatformBootArgs(const std::string& arch);

// logger, metrics, machine-config, boot-source, drives, network interfaces,
// MMDS config and contents, vsock, entropy; InstanceStart is separate
// (StartRequest) so a caller can add its own requests before it. Fails on a
// spec Firecracker cannot take (no kernel, no root disk, bad vCPU count, a
// plan too large for the command line of a VM without a NIC).
[[nodiscard]] absl::StatusOr<std::vector<ApiRequest>> ConfigureRequests(
    const VmSpec& spec);
ApiRequest StartRequest();
// PATCH /vm: "Paused" or "Resumed".
ApiRequest VmStateRequest(const std::string& state);
// PUT /snapshot/create: a full snapshot of the paused VM, its state and
// its memory into these files.
ApiRequest SnapshotCreateRequest(const std::string& state_file,
                                 const std::string& memory_file);
// PUT /snapshot/load into a fresh Firecracker: the state file, and the
// memory from `memory_path` (a file, File) or the memory server listening
// there (Uffd); the VM stays paused unless `resume`. `taps` (interface id
// -> TAP) become network_overrides (Firecracker 1.12+; none: left out).
ApiRequest SnapshotLoadRequest(
    const std::string& state_file, bool uffd, const std::string& memory_path,
    bool resume,
    const std::vector<std::pair<std::string, std::string>>& taps = {});
// The interface id ConfigureRequests gives spec.nics(index): "eth0", ...
std::string InterfaceId(int index);
// Replaces the whole MMDS store with the plan (after a restore, too): PUT
// /mmds with {"fcvm": {"plan": <the plan's JSON mapping>}}, a
// google.protobuf.Struct printed with ToJson (keys sorted).
[[nodiscard]] absl::StatusOr<ApiRequest> MmdsPlanRequest(
    const agent::Plan& plan);

}  // namespace fcvm::runner::firecracker

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_REQUESTS_H_
