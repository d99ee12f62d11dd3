#include "runner/vmm/firecracker/backend.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/vmm/firecracker/api.pb.h"
#include "runner/vmm/firecracker/client.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::runner::firecracker {
namespace {

[[nodiscard]] absl::Status SetVmState(const std::string& dir,
                                      const std::string& state) {
  return ApiClient(ApiSocket(dir))
      .Send(VmStateRequest(state), absl::Seconds(10))
      .status();
}

}  // namespace

std::string ApiSocket(const std::string& dir) {
  return absl::StrCat(dir, "/api.sock");
}

VmmCapabilities FirecrackerVmm::Capabilities() const {
  VmmCapabilities capabilities;
  capabilities.pause = true;
  return capabilities;
}

std::string FirecrackerVmm::GuestBlockDevice(int index) const {
  // Firecracker attaches drives in the order they are configured
  // (ConfigureRequests: spec order), and the guest probes them in order.
  return VirtioBlockDevice(index);
}

[[nodiscard]] absl::StatusOr<Subprocess> FirecrackerVmm::Start(
    const VmSpec& spec, const std::string& dir) {
  // Everything that can be refused is refused before anything starts.
  ASSIGN_OR_RETURN(std::vector<ApiRequest> requests, ConfigureRequests(spec));
  const std::string api = ApiSocket(dir);
  unlink(api.c_str());  // Firecracker will not bind over a stale socket.
  SubprocessOptions options;
  options.argv =
      VmmCommand(spec, {binary_, "--api-sock", api, "--id", spec.name()});
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  ASSIGN_OR_RETURN(Subprocess vmm, Subprocess::Start(std::move(options)));
  ApiClient client(api);
  absl::Status configured = client.WaitReady(absl::Seconds(5));
  for (size_t i = 0; configured.ok() && i < requests.size(); ++i) {
    configured = client.Send(requests[i]).status();
  }
  if (configured.ok()) configured = client.Send(StartRequest()).status();
  if (!configured.ok()) {
    (void)vmm.Kill();
    unlink(api.c_str());
    return configured;
  }
  return vmm;
}

[[nodiscard]] absl::StatusOr<Subprocess> FirecrackerVmm::Restore(
    const VmSpec& spec, const std::string& dir, const RestoreSource& source) {
  (void)dir;
  return absl::UnimplementedError(absl::StrCat(
      "VM '", spec.name(), "': restoring ", source.snapshot_dir,
      " under Firecracker is not implemented yet (the snapshot commands "
      "bring it)"));
}

[[nodiscard]] absl::Status FirecrackerVmm::Pause(const std::string& dir) {
  return SetVmState(dir, "Paused");
}

[[nodiscard]] absl::Status FirecrackerVmm::Resume(const std::string& dir) {
  return SetVmState(dir, "Resumed");
}

[[nodiscard]] absl::StatusOr<SnapshotReport> FirecrackerVmm::Snapshot(
    const std::string& dir, const std::string& snapshot_dir) {
  (void)dir;
  return absl::UnimplementedError(
      absl::StrCat("snapshot to ", snapshot_dir,
                   " under Firecracker is not implemented yet (the snapshot "
                   "commands bring it)"));
}

void FirecrackerVmm::ForceStop(Subprocess& vmm, const std::string& dir) {
  (void)dir;
  (void)vmm.Kill();
}

}  // namespace fcvm::runner::firecracker
