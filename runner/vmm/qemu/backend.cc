#include "runner/vmm/qemu/backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "google/protobuf/util/json_util.h"
#include "runner/storage/disk.h"
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

[[nodiscard]] absl::StatusOr<google::protobuf::Struct> Arguments(
    const std::string& json) {
  google::protobuf::Struct arguments;
  if (!google::protobuf::util::JsonStringToMessage(json, &arguments).ok()) {
    return absl::InternalError(absl::StrCat("QMP arguments: ", json));
  }
  return arguments;
}

// {"uri": URI}, for migrate and migrate-incoming.
google::protobuf::Struct UriArgument(const std::string& uri) {
  google::protobuf::Struct arguments;
  (*arguments.mutable_fields())["uri"].set_string_value(uri);
  return arguments;
}

// The plan as JSON padded with spaces (PaddedPlanSize).
[[nodiscard]] absl::StatusOr<std::string> PaddedPlanJson(
    const fcvm::agent::Plan& plan) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(plan, &json).ok()) {
    return absl::InternalError("the plan does not print as JSON");
  }
  json.resize(PaddedPlanSize(json.size()), ' ');
  json.back() = '\n';
  return json;
}

// Both ends of a migration must skip the RAM that lives in the shared
// file (x-ignore-shared): the stream then carries only CPU and device
// state, and the memory file is the snapshot's memory.
[[nodiscard]] absl::Status IgnoreSharedMemory(QmpClient& qmp) {
  ASSIGN_OR_RETURN(
      google::protobuf::Struct arguments,
      Arguments(R"({"capabilities":[{"capability":"x-ignore-shared",)"
                R"("state":true}]})"));
  return qmp.Execute("migrate-set-capabilities", arguments).status();
}

// Polls query-migrate until the migration completed (QEMU 7.2 sends no
// event for it without the "events" capability, and this is a few ms).
[[nodiscard]] absl::Status AwaitMigration(QmpClient& qmp,
                                          const std::string& what,
                                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(google::protobuf::Value answer,
                     Annotate(qmp.Execute("query-migrate"), what));
    const auto& fields = answer.struct_value().fields();
    auto status = fields.find("status");
    const std::string state =
        status == fields.end() ? "" : status->second.string_value();
    if (state == "completed") return absl::OkStatus();
    if (state == "failed" || state == "cancelled") {
      auto why = fields.find("error-desc");
      return absl::DataLossError(
          absl::StrCat(what, " ", state,
                       why == fields.end()
                           ? ""
                           : absl::StrCat(": ", why->second.string_value())));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, " not completed in ", absl::FormatDuration(timeout),
          " (QEMU says '", state, "')"));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

// The last line QEMU wrote on stderr, once it has exited (why it refused
// a state or a file).
std::string LastWords(Subprocess& process) {
  std::string text;
  char buffer[4096];
  pollfd fd = {process.stderr_pipe().get(), POLLIN, 0};
  while (fd.fd >= 0 && poll(&fd, 1, 1000) > 0) {
    const ssize_t n = read(fd.fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, n);
  }
  absl::string_view trimmed = absl::StripTrailingAsciiWhitespace(text);
  return std::string(trimmed.substr(trimmed.rfind('\n') + 1));
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
  capabilities.snapshot = true;
  capabilities.restore_file = true;
  capabilities.user_network = true;
  return capabilities;
}

std::string QemuVmm::GuestBlockDevice(int index) const {
  // QemuArgv adds drives so the guest probes them in spec order on both
  // machines (in reverse on aarch64 virt, which probes from the top).
  return VirtioBlockDevice(index);
}

[[nodiscard]] absl::StatusOr<Subprocess> QemuVmm::Launch(const VmSpec& spec,
                                                         const std::string& dir,
                                                         qemu::Launch launch) {
  launch.accel = accel_;
  launch.console = "stdio";
  launch.qmp_socket = QmpSocket(dir);
  if (spec.channel() == "virtio-serial") {
    launch.channel_socket = absl::StrCat(dir, "/agent.sock");
  }
  launch.plan_file = absl::StrCat(dir, "/plan.json");
  ASSIGN_OR_RETURN(std::string plan, PaddedPlanJson(spec.plan()));
  RETURN_IF_ERROR(WriteFileAtomically(launch.plan_file, plan, 0600));
  SubprocessOptions options;
  ASSIGN_OR_RETURN(std::vector<std::string> argv, QemuArgv(spec, launch));
  options.argv = VmmCommand(spec, std::move(argv));
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  return Subprocess::Start(std::move(options));
}

[[nodiscard]] absl::StatusOr<Subprocess> QemuVmm::Start(
    const VmSpec& spec, const std::string& dir) {
  qemu::Launch launch;
  // RAM in a file of the VM's own (shared): a snapshot copies it while the
  // VM is stopped. It goes with the VM (Finish, rm).
  launch.memory_file = absl::StrCat(dir, "/", kVmMemoryFile);
  return Launch(spec, dir, std::move(launch));
}

[[nodiscard]] absl::StatusOr<Subprocess> QemuVmm::Restore(
    const VmSpec& spec, const std::string& dir, const RestoreSource& source) {
  const std::string where =
      absl::StrCat("VM '", spec.name(), "': restoring ", source.snapshot_dir);
  if (source.memory != MemoryBackend::kFile) {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     ": QEMU restores from the memory file only (--mem-backend "
                     "file); the userfaultfd server serves Firecracker"));
  }
  qemu::Launch launch;
  // The snapshot's memory, privately: clean pages are shared with every
  // other clone through the page cache; the file itself never changes.
  launch.memory_file =
      absl::StrCat(source.snapshot_dir, "/", kSnapshotMemoryFile);
  launch.memory_shared = false;
  launch.incoming = true;
  ASSIGN_OR_RETURN(Subprocess process, Launch(spec, dir, std::move(launch)));
  if (source.started) source.started(process.pid());
  auto fail = [&](const absl::Status& status) -> absl::Status {
    (void)process.Kill();
    const std::string words = LastWords(process);
    return absl::Status(
        status.code(),
        absl::StrCat(
            where, ": ", status.message(),
            words.empty() ? "" : absl::StrCat(" (QEMU: ", words, ")")));
  };
  absl::StatusOr<QmpClient> qmp =
      ConnectToStarting(process, QmpSocket(dir), absl::Seconds(20));
  if (!qmp.ok()) return fail(qmp.status());
  // The state file opened here and handed over (fd:), as Snapshot does.
  absl::StatusOr<UniqueFd> state =
      OpenFd(absl::StrCat(source.snapshot_dir, "/", kSnapshotStateFile),
             O_RDONLY | O_CLOEXEC);
  if (!state.ok()) return fail(state.status());
  if (absl::Status loaded =
          LoadDeviceState(*qmp, state->get(), absl::Seconds(30));
      !loaded.ok()) {
    return fail(loaded);
  }
  if (absl::Status cont = qmp->Execute("cont").status(); !cont.ok()) {
    return fail(cont);
  }
  return process;
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

[[nodiscard]] absl::StatusOr<SnapshotReport> QemuVmm::Snapshot(
    const std::string& dir, const std::string& snapshot_dir) {
  SnapshotReport report;
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(QmpClient qmp,
                   QmpClient::Connect(QmpSocket(dir), absl::Seconds(5)));
  // QEMU writes the state into a file we open and hand it (fd:): when the
  // migration says "completed", every byte is in the file (a pipe through
  // `exec:cat >` would still be draining).
  const std::string state_file =
      absl::StrCat(snapshot_dir, "/", kSnapshotStateFile);
  ASSIGN_OR_RETURN(
      UniqueFd state,
      OpenFd(state_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  RETURN_IF_ERROR(SaveDeviceState(qmp, state.get(), absl::Seconds(60)));
  report.state_took = absl::Now() - start;
  // Frozen while the VM is stopped: the running VM keeps writing its own
  // file after it resumes; the snapshot's copy never changes.
  const std::string memory = absl::StrCat(dir, "/", kVmMemoryFile);
  struct stat st;
  if (stat(memory.c_str(), &st) != 0) {
    return ErrnoStatus(absl::StrCat("the VM's memory file ", memory));
  }
  ASSIGN_OR_RETURN(
      DiskReport copied,
      CreateWritableDisk(absl::StrCat(snapshot_dir, "/", kSnapshotMemoryFile),
                         static_cast<uint64_t>(st.st_size), memory));
  report.memory_took = copied.took;
  report.memory_method = copied.method;
  return report;
}

[[nodiscard]] absl::StatusOr<QmpClient> ConnectToStarting(
    Subprocess& qemu, const std::string& socket, absl::Duration timeout) {
  // QEMU makes its socket a moment after it starts; if it exits first
  // (a file it cannot open), say so at once instead of waiting.
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<QmpClient> connected =
        QmpClient::Connect(socket, absl::Milliseconds(20));
    if (connected.ok()) return connected;
    if (pollfd exited = {qemu.exit_fd(), POLLIN, 0}; poll(&exited, 1, 0) > 0) {
      return absl::FailedPreconditionError("QEMU exited at start");
    }
    if (absl::Now() > deadline) return connected.status();
  }
}

[[nodiscard]] absl::Status SaveDeviceState(QmpClient& qmp, int fd,
                                           absl::Duration timeout) {
  RETURN_IF_ERROR(IgnoreSharedMemory(qmp));
  RETURN_IF_ERROR(qmp.SendFd("fcvm-vmstate", fd));  // QEMU gets its own.
  RETURN_IF_ERROR(
      qmp.Execute("migrate", UriArgument("fd:fcvm-vmstate")).status());
  return AwaitMigration(qmp, "writing the device state", timeout);
}

[[nodiscard]] absl::Status LoadDeviceState(QmpClient& qmp, int fd,
                                           absl::Duration timeout) {
  RETURN_IF_ERROR(IgnoreSharedMemory(qmp));
  RETURN_IF_ERROR(qmp.SendFd("fcvm-vmstate", fd));
  RETURN_IF_ERROR(Annotate(
      qmp.Execute("migrate-incoming", UriArgument("fd:fcvm-vmstate")).status(),
      "loading the device state"));
  return AwaitMigration(qmp, "loading the device state", timeout);
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
