#include "runner/vmm/qemu/backend.h"

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/qemu/qmp.h"

namespace fcvm::runner::qemu {
namespace {

// Runs one QMP command on the VM's socket; the error names the VM's
// directory and QEMU's own reason.
[[nodiscard]] absl::StatusOr<google::protobuf::Value> Qmp(
    const std::string& dir, const std::string& command) {
  ASSIGN_OR_RETURN(QmpClient qmp,
                   QmpClient::Connect(QmpSocket(dir), absl::Seconds(5)));
  return qmp.Execute(command, {}, absl::Seconds(10));
}

// QEMU's run state ("running", "paused", ...) from query-status.
[[nodiscard]] absl::StatusOr<std::string> RunState(const std::string& dir) {
  ASSIGN_OR_RETURN(QmpClient qmp,
                   QmpClient::Connect(QmpSocket(dir), absl::Seconds(5)));
  ASSIGN_OR_RETURN(google::protobuf::Value status,
                   qmp.Execute("query-status", {}, absl::Seconds(10)));
  const auto& fields = status.struct_value().fields();
  auto it = fields.find("status");
  if (it == fields.end()) {
    return absl::DataLossError("QMP query-status: no status in the answer");
  }
  return it->second.string_value();
}

}  // namespace

std::string QmpSocket(const std::string& dir) {
  return absl::StrCat(dir, "/qmp.sock");
}

std::string QemuVmm::Describe() const {
  return absl::StrCat("qemu (", accel_, ")");
}

VmmCapabilities QemuVmm::Capabilities() const {
  VmmCapabilities capabilities;
  capabilities.pause = true;
  capabilities.user_network = true;
  return capabilities;
}

std::string QemuVmm::GuestBlockDevice(int index) const {
  // QemuArgv adds drives so the guest probes them in spec order on both
  // machines (in reverse on aarch64 virt, which probes from the top).
  return VirtioBlockDevice(index);
}

[[nodiscard]] absl::StatusOr<Subprocess> QemuVmm::Start(
    const VmSpec& spec, const std::string& dir) {
  Launch launch;
  launch.accel = accel_;
  launch.console = "stdio";
  launch.qmp_socket = QmpSocket(dir);
  launch.plan_file = absl::StrCat(dir, "/plan.json");
  std::string plan;
  if (!google::protobuf::util::MessageToJsonString(spec.plan(), &plan).ok()) {
    return absl::InternalError(absl::StrCat(
        "VM '", spec.name(), "': the plan does not print as JSON"));
  }
  RETURN_IF_ERROR(WriteFileAtomically(launch.plan_file, plan, 0600));
  SubprocessOptions options;
  ASSIGN_OR_RETURN(std::vector<std::string> argv, QemuArgv(spec, launch));
  options.argv = VmmCommand(spec, std::move(argv));
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  return Subprocess::Start(std::move(options));
}

[[nodiscard]] absl::StatusOr<Subprocess> QemuVmm::Restore(
    const VmSpec& spec, const std::string& dir, const RestoreSource& source) {
  (void)dir;
  return absl::UnimplementedError(absl::StrCat(
      "VM '", spec.name(), "': restoring ", source.snapshot_dir,
      " under QEMU is not implemented yet (the snapshot commands bring it)"));
}

[[nodiscard]] absl::Status QemuVmm::Pause(const std::string& dir) {
  RETURN_IF_ERROR(Qmp(dir, "stop").status());
  ASSIGN_OR_RETURN(std::string state, RunState(dir));
  if (state != "paused") {
    return absl::InternalError(
        absl::StrCat("QMP stop: QEMU says it is '", state, "', not paused"));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status QemuVmm::Resume(const std::string& dir) {
  RETURN_IF_ERROR(Qmp(dir, "cont").status());
  ASSIGN_OR_RETURN(std::string state, RunState(dir));
  if (state != "running") {
    return absl::InternalError(
        absl::StrCat("QMP cont: QEMU says it is '", state, "', not running"));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status QemuVmm::Snapshot(const std::string& dir,
                                             const std::string& snapshot_dir) {
  (void)dir;
  return absl::UnimplementedError(
      absl::StrCat("snapshot to ", snapshot_dir,
                   " under QEMU is not implemented yet (the snapshot "
                   "commands bring it)"));
}

void QemuVmm::ForceStop(Subprocess& vmm, const std::string& dir) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect(QmpSocket(dir), absl::Seconds(2));
  if (qmp.ok() && qmp->Execute("quit", {}, absl::Seconds(2)).ok() &&
      vmm.Wait(absl::Seconds(5)).ok()) {
    return;
  }
  (void)vmm.Kill();
}

}  // namespace fcvm::runner::qemu
