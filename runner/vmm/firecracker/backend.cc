#include "runner/vmm/firecracker/backend.h"

#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

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

// `path` as the VMM sees it: under spec.vmm_root() if it is in the VM's
// directory (vm_spec.proto), else as it is.
std::string InVmmRoot(const VmSpec& spec, const std::string& dir,
                      const std::string& path) {
  const std::string prefix = absl::StrCat(dir, "/");
  if (spec.vmm_root().empty() || path.compare(0, prefix.size(), prefix) != 0) {
    return path;
  }
  return absl::StrCat(spec.vmm_root(), "/", path.substr(prefix.size()));
}

// The spec with its paths as the VMM sees them.
VmSpec AsSeenByVmm(const VmSpec& spec, const std::string& dir) {
  VmSpec seen = spec;
  for (Disk& disk : *seen.mutable_disks()) {
    disk.set_path(InVmmRoot(spec, dir, disk.path()));
  }
  if (!seen.log_path().empty()) {
    seen.set_log_path(InVmmRoot(spec, dir, seen.log_path()));
  }
  if (!seen.metrics_path().empty()) {
    seen.set_metrics_path(InVmmRoot(spec, dir, seen.metrics_path()));
  }
  if (!seen.vsock_uds().empty()) {
    seen.set_vsock_uds(InVmmRoot(spec, dir, seen.vsock_uds()));
  }
  return seen;
}

// Starts Firecracker with its API on the VM's socket: in a mount namespace
// of its own with the VM's directory at spec.vmm_root() (unshare and
// mount(8); the namespace dies with the process, nothing to remove), in
// the rootless network's namespaces where the spec says so.
[[nodiscard]] absl::StatusOr<Subprocess> StartProcess(
    const std::string& binary, const VmSpec& spec, const std::string& dir) {
  const std::string api = ApiSocket(dir);
  unlink(api.c_str());  // Firecracker will not bind over a stale socket.
  std::vector<std::string> argv;
  if (!spec.vmm_root().empty()) {
    argv = {"unshare", "--mount", "--propagation", "private"};
    if (geteuid() != 0 && spec.netns_pid() <= 0) {
      // Not root and not in a rootless network's user namespace (which
      // gives the capability): a user namespace of its own for the mount.
      argv.insert(argv.begin() + 1, {"--user", "--map-root-user"});
    }
    for (const std::string& arg :
         {std::string("--"), std::string("sh"), std::string("-c"),
          std::string(R"(mount --bind -- "$1" "$2" && shift 2 && exec "$@")"),
          std::string("fcvm-vmm-root"), dir, spec.vmm_root()}) {
      argv.push_back(arg);
    }
  }
  for (const std::string& arg :
       {binary, std::string("--api-sock"), api, std::string("--id"),
        spec.name()}) {
    argv.push_back(arg);
  }
  SubprocessOptions options;
  options.argv = VmmCommand(spec, std::move(argv));
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  return Subprocess::Start(std::move(options));
}

// GET /'s vmm_version ("1.16.1") as {major, minor}.
[[nodiscard]] absl::StatusOr<std::pair<int, int>> Version(
    const ApiClient& client) {
  ASSIGN_OR_RETURN(std::string body, client.Send({"GET", "/", ""}));
  google::protobuf::Struct info;
  if (!google::protobuf::util::JsonStringToMessage(body, &info).ok()) {
    return absl::DataLossError(absl::StrCat("GET /: not JSON: ", body));
  }
  auto it = info.fields().find("vmm_version");
  const std::string version =
      it == info.fields().end() ? "" : it->second.string_value();
  std::vector<std::string> parts = absl::StrSplit(version, '.');
  std::pair<int, int> v;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &v.first) ||
      !absl::SimpleAtoi(parts[1], &v.second)) {
    return absl::DataLossError(
        absl::StrCat("GET /: vmm_version '", version, "'"));
  }
  return v;
}

}  // namespace

std::string ApiSocket(const std::string& dir) {
  return absl::StrCat(dir, "/api.sock");
}

VmmCapabilities FirecrackerVmm::Capabilities() const {
  VmmCapabilities capabilities;
  capabilities.pause = true;
  capabilities.snapshot = true;
  capabilities.restore_file = true;
  capabilities.restore_uffd = true;
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
  ASSIGN_OR_RETURN(std::vector<ApiRequest> requests,
                   ConfigureRequests(AsSeenByVmm(spec, dir)));
  const std::string api = ApiSocket(dir);
  ASSIGN_OR_RETURN(Subprocess vmm, StartProcess(binary_, spec, dir));
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
  const std::string where =
      absl::StrCat("VM '", spec.name(), "': restoring ", source.snapshot_dir);
  const bool uffd = source.memory == ::fcvm::runner::MemoryBackend::kUffd;
  if (uffd && source.uffd_socket.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": no memory server socket"));
  }
  // The clone's plan goes into MMDS (not in the snapshot): only a VM with
  // a NIC reads it there.
  ASSIGN_OR_RETURN(ApiRequest mmds, MmdsPlanRequest(spec.plan()));
  if (spec.nics_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": a VM without a NIC has its plan on the kernel command "
               "line, which a clone cannot change"));
  }
  std::vector<std::pair<std::string, std::string>> taps;
  for (int i = 0; i < spec.nics_size(); ++i) {
    if (spec.nics(i).has_tap()) {
      taps.emplace_back(InterfaceId(i), spec.nics(i).tap());
    }
  }
  const std::string state = absl::StrCat(source.snapshot_dir, "/",
                                         kSnapshotStateFile);
  const std::string memory =
      uffd ? source.uffd_socket
           : absl::StrCat(source.snapshot_dir, "/", kSnapshotMemoryFile);
  // Firecracker's log and metrics, which a load may follow (and nothing
  // else of the configuration: the snapshot holds it).
  std::vector<ApiRequest> requests;
  absl::StatusOr<std::vector<ApiRequest>> configure =
      ConfigureRequests(AsSeenByVmm(spec, dir));
  if (!configure.ok()) return Annotate(configure.status(), where);
  for (ApiRequest& request : *configure) {
    if (request.path == "/logger" || request.path == "/metrics") {
      requests.push_back(std::move(request));
    }
  }
  requests.push_back(
      SnapshotLoadRequest(state, uffd, memory, /*resume=*/false, taps));
  requests.push_back(mmds);
  requests.push_back(VmStateRequest("Resumed"));
  ASSIGN_OR_RETURN(Subprocess vmm, StartProcess(binary_, spec, dir));
  if (source.started) source.started(vmm.pid());
  const std::string api = ApiSocket(dir);
  ApiClient client(api);
  auto fail = [&](const absl::Status& status) -> absl::Status {
    (void)vmm.Kill();
    unlink(api.c_str());
    return Annotate(status, where);
  };
  if (absl::Status ready = client.WaitReady(absl::Seconds(5)); !ready.ok()) {
    return fail(ready);
  }
  if (!taps.empty()) {
    // Each clone has a TAP of its own; the snapshot names its original's.
    absl::StatusOr<std::pair<int, int>> version = Version(client);
    if (!version.ok()) return fail(version.status());
    if (*version < std::make_pair(1, 12)) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "Firecracker ", version->first, ".", version->second,
          " cannot give a clone a TAP of its own (network_overrides came "
          "with 1.12)")));
    }
  }
  for (const ApiRequest& request : requests) {
    if (absl::StatusOr<std::string> sent =
            client.Send(request, absl::Minutes(2));
        !sent.ok()) {
      return fail(sent.status());
    }
  }
  return vmm;
}

[[nodiscard]] absl::Status FirecrackerVmm::Pause(const std::string& dir) {
  return SetVmState(dir, "Paused");
}

[[nodiscard]] absl::Status FirecrackerVmm::Resume(const std::string& dir) {
  return SetVmState(dir, "Resumed");
}

[[nodiscard]] absl::StatusOr<SnapshotReport> FirecrackerVmm::Snapshot(
    const std::string& dir, const std::string& snapshot_dir) {
  // Firecracker writes both files itself, the RAM as it is (its memory is
  // anonymous: there is no file of its own to copy).
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(
      ApiClient(ApiSocket(dir))
          .Send(SnapshotCreateRequest(
                    absl::StrCat(snapshot_dir, "/", kSnapshotStateFile),
                    absl::StrCat(snapshot_dir, "/", kSnapshotMemoryFile)),
                absl::Minutes(10))
          .status());
  SnapshotReport report;
  report.state_took = absl::Now() - start;
  report.memory_method = "written by Firecracker";
  return report;
}

void FirecrackerVmm::ForceStop(Subprocess& vmm, const std::string& dir) {
  (void)dir;
  (void)vmm.Kill();
}

}  // namespace fcvm::runner::firecracker
