#include "runner/vmm/firecracker/backend.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/vmm/firecracker/api.pb.h"
#include "runner/vmm/firecracker/client.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::runner::firecracker {

absl::StatusOr<Subprocess> FirecrackerVmm::Start(const VmSpec& spec,
                                                 const std::string& dir) {
  // Everything that can be refused is refused before anything starts.
  ASSIGN_OR_RETURN(std::vector<ApiRequest> requests, ConfigureRequests(spec));
  const std::string api = absl::StrCat(dir, "/api.sock");
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

void FirecrackerVmm::ForceStop(Subprocess& vmm, const std::string& dir) {
  InstanceActionInfo action;
  action.set_action_type("SendCtrlAltDel");
  ApiClient client(absl::StrCat(dir, "/api.sock"));
  if (client.Send({"PUT", "/actions", ToJson(action)}, absl::Seconds(2)).ok() &&
      vmm.Wait(absl::Seconds(5)).ok()) {
    return;
  }
  (void)vmm.Kill();
}

}  // namespace fcvm::runner::firecracker
