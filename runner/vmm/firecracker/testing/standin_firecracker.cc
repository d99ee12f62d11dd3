// A stand-in for the firecracker binary where there is none (no
// Firecracker release, no working KVM): it serves Firecracker's API on
// --api-sock as Firecracker does, and boots the VM it was configured with
// under QEMU (TCG unless $FCVM_STANDIN_ACCEL=kvm) at InstanceStart. What
// it checks is Firecracker's contract, not QEMU's:
//   - every request against Firecracker's own OpenAPI spec
//     ($FCVM_STANDIN_SPEC; refused with a fault_message like Firecracker's),
//   - the order of operations (pre-boot resources refused after
//     InstanceStart, InstanceStart refused without a boot source, PATCH /vm
//     refused before it),
//   - MMDS as Firecracker holds it (one JSON document, PUT/PATCH/GET
//     /mmds; V2 tokens; JSON or IMDS text by Accept; agent/testing/
//     mmds_store.h), answered to the guest on 169.254.169.254:80 on the
//     TAP of the interface MMDS is configured for, as Firecracker answers
//     it on that interface,
//   - the serial console on stdin/stdout, the process ending when the
//     guest reboots or powers off, and the VM ending with the process (the
//     QEMU child dies with it: setpriv --pdeathsig).
// Where it differs from Firecracker: the guest sees QEMU's machine (its
// serial, its devices); the stand-in appends QEMU's own platform
// arguments to the boot arguments; MMDS traffic reaches the host's TAP
// (Firecracker answers it inside the VMM), so a DNAT of host port 80 would
// catch it; no jailer.
// Snapshots (PUT /snapshot/create of a paused VM, PUT /snapshot/load into
// a fresh stand-in) are Firecracker's in shape and order: the state file
// holds the configuration, drive paths and TAP names as they were (a load
// opens the saved paths; network_overrides replace TAPs), the memory file
// is the guest RAM, MMDS starts empty after a load, and a load with
// mem_backend Uffd does Firecracker's real handshake with the memory
// server: it maps anonymous "guest memory", registers it with a
// userfaultfd, sends the regions and the uffd, touches every page the
// snapshot's memory file holds data for and compares the served bytes
// with that file (the load fails on any difference), and keeps the
// connection until it exits, as Firecracker 1.12+ does. Where it differs:
// the state file is a JSON line plus QEMU's device state, and the VM
// itself then runs under QEMU from the memory file mapped privately (QEMU
// cannot take its RAM from a userfaultfd).
// vsock (PUT /vsock): the host side is Firecracker's, a Unix socket at
// uds_path taking "CONNECT <port>\n" and answering "OK <port>\n", then the
// bytes of the guest's stream; where it differs: the guest end is a QEMU
// virtio-serial port (the agent's channel, channel/names.h), not a vsock
// device, so only port 1025 (the channel's) is bridged, one connection at a
// time, and "OK" comes without waiting for the guest.
// $FCVM_STANDIN_LOG names a file that gets "METHOD PATH BODY" per request.
//   standin_firecracker --api-sock PATH [--id ID] | --version
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <thread>
#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "channel/names.h"
#include "agent/testing/mmds_store.h"
#include "base/subprocess.h"
#include "base/testing/http_server.h"
#include "google/protobuf/util/json_util.h"
#include "runner/vmm/firecracker/api.pb.h"
#include "runner/storage/disk.h"
#include "runner/vmm/firecracker/testing/openapi.h"
#include "runner/vmm/firecracker/testing/standin_snapshot.pb.h"
#include "runner/vmm/qemu/backend.h"
#include "uffd/testing/fake_firecracker.h"
#include "runner/vmm/kvm.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/qemu/qmp.h"

namespace fcvm::runner::firecracker {
namespace {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;

constexpr char kVersion[] = "1.16.1";

HttpAnswer Fault(int status, const std::string& message) {
  std::string body;
  Error error;
  error.set_fault_message(message);
  (void)google::protobuf::util::MessageToJsonString(error, &body);
  return {status, body};
}

template <typename Message>
bool Parse(const std::string& body, Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // The spec check came first.
  return google::protobuf::util::JsonStringToMessage(body, message, options)
      .ok();
}

class Standin {
 public:
  Standin(std::string id, std::optional<testing::OpenApiSpec> spec,
          std::string scratch)
      : id_(std::move(id)),
        spec_(std::move(spec)),
        scratch_(std::move(scratch)) {}

  HttpAnswer Handle(const HttpRequest& request);
  // Blocks until InstanceStart has run QEMU, then until QEMU exits.
  int WaitForTheVm();

 private:
  HttpAnswer Start() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpAnswer CreateSnapshot(const std::string& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpAnswer LoadSnapshot(const std::string& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The uffd side of a load: handshake, every page with data touched and
  // compared with the memory file. The connection stays open.
  HttpAnswer ServeFromMemoryServer(const std::string& socket,
                                   const std::string& memory_file)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The configured machine as a VmSpec for QEMU.
  VmSpec BuildSpec() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // MMDS on the host end of the TAP of the interface it is configured for.
  std::optional<HttpAnswer> StartMmds() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // QEMU for the configured machine; `incoming`: waiting for its state.
  std::optional<HttpAnswer> StartQemu(qemu::Launch launch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpAnswer SetState(const std::string& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StateName() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const std::optional<testing::OpenApiSpec> spec_;
  const std::string scratch_;
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool configured_ ABSL_GUARDED_BY(mu_) = false;  // A pre-boot PUT came.
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<MachineConfiguration> machine_ ABSL_GUARDED_BY(mu_);
  std::optional<BootSource> boot_ ABSL_GUARDED_BY(mu_);
  std::vector<Drive> drives_ ABSL_GUARDED_BY(mu_);
  std::vector<NetworkInterface> nics_ ABSL_GUARDED_BY(mu_);
  std::optional<MmdsConfig> mmds_config_ ABSL_GUARDED_BY(mu_);
  agent::testing::MmdsStore mmds_;
  std::unique_ptr<fcvm::testing::HttpTestServer> mmds_server_;
  std::optional<Subprocess> qemu_ ABSL_GUARDED_BY(mu_);
  // A Uffd load's guest memory and its connection to the memory server,
  // kept until the process exits.
  std::optional<uffd::testing::FakeFirecracker> uffd_memory_;
  UniqueFd uffd_socket_;
  // A booted VM's RAM file (unlinked), for /snapshot/create to copy.
  UniqueFd memory_fd_;
  std::optional<Vsock> vsock_ ABSL_GUARDED_BY(mu_);
};

// Firecracker's host-initiated vsock, bridged to the guest's channel port
// (QEMU's chardev socket `port`): runs for the process's life.
void BridgeVsock(UniqueFd listener, std::string port) {
  for (;;) {
    UniqueFd host(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!host) {
      if (errno == EINTR) continue;
      return;
    }
    std::string request;
    char c;
    while (request.size() < 64 && read(host.get(), &c, 1) == 1 && c != '\n') {
      request.push_back(c);
    }
    if (request != absl::StrCat("CONNECT ", channel::kVsockPort)) {
      continue;  // No listener on that guest port: Firecracker hangs up.
    }
    absl::StatusOr<UniqueFd> guest =
        ConnectUnixStreamWhenReady(port, "the guest's port", absl::Seconds(10));
    if (!guest.ok()) continue;
    static uint32_t local_port = 1u << 30;
    const std::string ok = absl::StrCat("OK ", ++local_port, "\n");
    if (write(host.get(), ok.data(), ok.size()) !=
        static_cast<ssize_t>(ok.size())) {
      continue;
    }
    // Both ways until either end closes (the host reconnects after that).
    pollfd fds[2] = {{host.get(), POLLIN, 0}, {guest->get(), POLLIN, 0}};
    char buffer[65536];
    for (bool open = true; open;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2 && open; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n <= 0) {
          open = false;
          break;
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t put = write(fds[1 - i].fd, buffer + done, n - done);
          if (put <= 0) {
            open = false;
            break;
          }
          done += put;
        }
      }
    }
  }
}

std::string Standin::StateName() const {
  return !started_ ? "Not started" : paused_ ? "Paused" : "Running";
}

HttpAnswer Standin::Handle(const HttpRequest& request) {
  absl::MutexLock lock(&mu_);
  // $FCVM_STANDIN_LOG: one line per request, for tests of the order.
  if (const char* log = std::getenv("FCVM_STANDIN_LOG"); log && *log) {
    if (FILE* f = std::fopen(log, "a")) {
      std::fprintf(f, "%s %s %s\n", request.method.c_str(),
                   request.path.c_str(), request.body.c_str());
      std::fclose(f);
    }
  }
  const std::string& path = request.path;
  const bool body_request =
      request.method == "PUT" || request.method == "PATCH";
  if (spec_.has_value()) {
    absl::Status fits =
        spec_->Check(request.method, path, body_request ? request.body : "");
    if (!fits.ok()) return Fault(400, std::string(fits.message()));
  }
  if (request.method == "GET" && path == "/") {
    return {200, absl::StrCat(R"({"app_name":"Firecracker","id":")", id_,
                              R"(","state":")", StateName(),
                              R"(","vmm_version":")", kVersion, R"("})")};
  }
  if (path == "/mmds") {
    if (request.method == "GET") return {200, mmds_.Get()};
    absl::Status done = request.method == "PUT" ? mmds_.Put(request.body)
                                                : mmds_.Patch(request.body);
    if (!done.ok()) {
      return Fault(absl::IsResourceExhausted(done) ? 413 : 400,
                   std::string(done.message()));
    }
    return {204, ""};
  }
  if (path == "/actions") {
    InstanceActionInfo action;
    if (!Parse(request.body, &action)) return Fault(400, "bad action body");
    if (action.action_type() == "InstanceStart") {
      if (started_) {
        return Fault(400,
                     "The requested operation is not supported after "
                     "starting the microVM.");
      }
      return Start();
    }
    if (action.action_type() == "SendCtrlAltDel") {
      if (HostArch() != "x86_64") {
        return Fault(400, "SendCtrlAltDel does not supported on aarch64.");
      }
      absl::StatusOr<qemu::QmpClient> qmp = qemu::QmpClient::Connect(
          absl::StrCat(scratch_, "/qmp.sock"), absl::Seconds(2));
      google::protobuf::Struct keys;
      auto* list = (*keys.mutable_fields())["keys"].mutable_list_value();
      for (const char* key : {"ctrl", "alt", "delete"}) {
        google::protobuf::Struct k;
        (*k.mutable_fields())["type"].set_string_value("qcode");
        (*k.mutable_fields())["data"].set_string_value(key);
        *list->add_values()->mutable_struct_value() = k;
      }
      if (!qmp.ok() || !qmp->Execute("send-key", keys).ok()) {
        return Fault(400, "SendCtrlAltDel failed");
      }
      return {204, ""};
    }
    if (action.action_type() == "FlushMetrics") return {204, ""};
    return Fault(400, absl::StrCat("unknown action ", action.action_type()));
  }
  if (path == "/vm" && request.method == "PATCH") return SetState(request.body);
  if (path == "/snapshot/create" && request.method == "PUT") {
    return CreateSnapshot(request.body);
  }
  if (path == "/snapshot/load" && request.method == "PUT") {
    return LoadSnapshot(request.body);
  }
  // Everything else configures the machine before it starts.
  if (request.method != "PUT") return Fault(400, "not in this stand-in");
  if (started_) {
    return Fault(400,
                 "The requested operation is not supported after "
                 "starting the microVM.");
  }
  // Logger and metrics may come before a snapshot load (the spec says
  // so); everything else configures a machine to boot.
  if (path != "/logger" && path != "/metrics") configured_ = true;
  if (path == "/machine-config") {
    MachineConfiguration machine;
    if (!Parse(request.body, &machine)) return Fault(400, "bad body");
    machine_ = machine;
  } else if (path == "/boot-source") {
    BootSource boot;
    if (!Parse(request.body, &boot)) return Fault(400, "bad body");
    boot_ = boot;
  } else if (absl::StartsWith(path, "/drives/")) {
    Drive drive;
    if (!Parse(request.body, &drive)) return Fault(400, "bad body");
    if (drive.drive_id() != path.substr(8)) {
      return Fault(400,
                   "The id from the path does not match the id from the body!");
    }
    drives_.push_back(drive);
  } else if (absl::StartsWith(path, "/network-interfaces/")) {
    NetworkInterface nic;
    if (!Parse(request.body, &nic)) return Fault(400, "bad body");
    nics_.push_back(nic);
  } else if (path == "/mmds/config") {
    MmdsConfig config;
    if (!Parse(request.body, &config)) return Fault(400, "bad body");
    mmds_config_ = config;
  } else if (path == "/vsock") {
    Vsock vsock;
    if (!Parse(request.body, &vsock)) return Fault(400, "bad body");
    vsock_ = vsock;
  } else if (path != "/entropy" && path != "/logger" && path != "/metrics") {
    return Fault(400, absl::StrCat("the stand-in does not take ", path));
  }
  return {204, ""};
}

HttpAnswer Standin::SetState(const std::string& body) {
  if (!started_) {
    return Fault(400,
                 "The requested operation is not supported before "
                 "starting the microVM.");
  }
  Vm vm;
  if (!Parse(body, &vm)) return Fault(400, "bad body");
  absl::StatusOr<qemu::QmpClient> qmp = qemu::QmpClient::Connect(
      absl::StrCat(scratch_, "/qmp.sock"), absl::Seconds(2));
  if (!qmp.ok()) return Fault(400, std::string(qmp.status().message()));
  const bool pause = vm.state() == "Paused";
  if (absl::Status done = qmp->Execute(pause ? "stop" : "cont").status();
      !done.ok()) {
    return Fault(400, std::string(done.message()));
  }
  paused_ = pause;
  return {204, ""};
}

VmSpec Standin::BuildSpec() const {
  VmSpec spec;
  spec.set_name(id_);
  spec.set_arch(HostArch());
  spec.set_kernel(boot_->kernel_image_path());
  // Firecracker's arguments, then QEMU's platform needs: the later
  // console= and reboot= win (reboot=t: a reset is a triple fault, which
  // QEMU's -no-reboot turns into its exit, as Firecracker exits).
  spec.set_boot_args(
      absl::StrCat(boot_->boot_args(),
                   spec.arch() == "x86_64" ? " reboot=t" : " console=ttyAMA0"));
  spec.set_vcpus(machine_.has_value() ? machine_->vcpu_count() : 1);
  spec.set_memory_mib(machine_.has_value() ? machine_->mem_size_mib() : 128);
  for (const Drive& drive : drives_) {
    Disk* disk = spec.add_disks();
    disk->set_path(drive.path_on_host());
    disk->set_read_only(drive.is_read_only());
  }
  for (const NetworkInterface& nic : nics_) {
    Nic* out = spec.add_nics();
    out->set_tap(nic.host_dev_name());
    out->set_guest_mac(nic.guest_mac());
  }
  return spec;
}

std::optional<HttpAnswer> Standin::StartMmds() {
  std::string mmds_tap;
  for (const NetworkInterface& nic : nics_) {
    if (mmds_config_.has_value() &&
        !mmds_config_->network_interfaces().empty() &&
        mmds_config_->network_interfaces(0) == nic.iface_id()) {
      mmds_tap = nic.host_dev_name();
    }
  }
  if (mmds_tap.empty()) return std::nullopt;
  // Firecracker answers 169.254.169.254 on this interface itself; the
  // stand-in answers it on the host end of the TAP.
  SubprocessOptions ip;
  ip.argv = {"ip", "addr", "replace", "169.254.169.254/32", "dev", mmds_tap};
  if (absl::StatusOr<Subprocess::Output> added =
          RunCommand(ip, absl::Seconds(10));
      !added.ok()) {
    return Fault(400, absl::StrCat("stand-in MMDS on ", mmds_tap, ": ",
                                   added.status().message()));
  }
  absl::StatusOr<std::unique_ptr<fcvm::testing::HttpTestServer>> server =
      fcvm::testing::HttpTestServer::StartTcp(
          [this](const HttpRequest& guest) {
            agent::testing::MmdsHeaders headers(guest.headers.begin(),
                                                guest.headers.end());
            agent::testing::MmdsAnswer answer =
                mmds_.Answer(guest.method, guest.path, headers);
            return HttpAnswer{answer.status, answer.body, answer.content_type};
          },
          "169.254.169.254", 80, mmds_tap);
  if (!server.ok()) {
    return Fault(400,
                 absl::StrCat("stand-in MMDS: ", server.status().message()));
  }
  mmds_server_ = std::move(*server);
  return std::nullopt;
}

std::optional<HttpAnswer> Standin::StartQemu(qemu::Launch launch) {
  const char* accel = std::getenv("FCVM_STANDIN_ACCEL");
  launch.accel =
      accel != nullptr && std::string(accel) == "kvm" ? "kvm" : "tcg";
  launch.console = "stdio";
  launch.qmp_socket = absl::StrCat(scratch_, "/qmp.sock");
  if (vsock_.has_value()) {
    launch.channel_socket = absl::StrCat(scratch_, "/agent.sock");
    absl::StatusOr<UniqueFd> listener =
        ListenUnixStream(vsock_->uds_path(), 0600, "the vsock socket");
    if (!listener.ok()) {
      return Fault(400, absl::StrCat("vsock: ", listener.status().message()));
    }
    std::thread(BridgeVsock, std::move(*listener), launch.channel_socket)
        .detach();
  }
  absl::StatusOr<std::vector<std::string>> argv =
      qemu::QemuArgv(BuildSpec(), launch);
  if (!argv.ok()) return Fault(400, std::string(argv.status().message()));
  SubprocessOptions options;
  // Killed with its parent, as a VM dies with the Firecracker process.
  options.argv = {"setpriv", "--pdeathsig", "SIGKILL", "--"};
  options.argv.insert(options.argv.end(), argv->begin(), argv->end());
  options.stdin_mode = options.stdout_mode = options.stderr_mode =
      StdioMode::kInherit;
  options.new_process_group = false;
  absl::StatusOr<Subprocess> qemu = Subprocess::Start(std::move(options));
  if (!qemu.ok()) return Fault(400, std::string(qemu.status().message()));
  qemu_.emplace(std::move(*qemu));
  return std::nullopt;
}

HttpAnswer Standin::Start() {
  if (!boot_.has_value() || boot_->kernel_image_path().empty()) {
    return Fault(400,
                 "Cannot start microvm that was not configured yet: no "
                 "boot source");
  }
  if (std::optional<HttpAnswer> failed = StartMmds()) return *failed;
  qemu::Launch launch;
  // Guest RAM in a file, shared, so /snapshot/create can copy it while the
  // VM is paused (Firecracker's RAM is anonymous; it writes it out).
  const std::string memory = absl::StrCat(scratch_, "/memory");
  launch.memory_file = memory;
  if (std::optional<HttpAnswer> failed = StartQemu(launch)) return *failed;
  // Once QEMU has it open, the file goes from the directory: the stand-in
  // killed (as Firecracker is, by SIGKILL) leaves no guest RAM behind.
  absl::StatusOr<qemu::QmpClient> qmp = qemu::ConnectToStarting(
      *qemu_, absl::StrCat(scratch_, "/qmp.sock"), absl::Seconds(20));
  absl::StatusOr<UniqueFd> ram = OpenFd(memory, O_RDONLY | O_CLOEXEC);
  unlink(memory.c_str());
  if (!qmp.ok() || !ram.ok()) {
    (void)qemu_->Kill();
    qemu_.reset();
    return Fault(400, "the stand-in's QEMU did not start");
  }
  memory_fd_ = std::move(*ram);
  started_ = true;
  return {204, ""};
}

HttpAnswer Standin::CreateSnapshot(const std::string& body) {
  if (!started_ || !paused_) {
    return Fault(400,
                 "Create snapshot error: the microVM must be paused (PATCH "
                 "/vm Paused) first");
  }
  SnapshotCreateParams params;
  if (!Parse(body, &params)) return Fault(400, "bad body");
  if (params.snapshot_type() == "Diff") {
    return Fault(400, "the stand-in takes Full snapshots only");
  }
  const std::string memory = absl::StrCat("/proc/self/fd/", memory_fd_.get());
  struct stat st;
  if (fstat(memory_fd_.get(), &st) != 0) return Fault(400, "no guest memory");
  testing::StandinSnapshot saved;
  if (machine_.has_value()) *saved.mutable_machine() = *machine_;
  *saved.mutable_boot() = *boot_;
  for (const Drive& d : drives_) *saved.add_drives() = d;
  for (const NetworkInterface& n : nics_) *saved.add_nics() = n;
  if (mmds_config_.has_value()) {
    *saved.mutable_mmds_config() = *mmds_config_;
  }
  if (vsock_.has_value()) *saved.mutable_vsock() = *vsock_;
  const std::string& mem_path = params.mem_file_path();
  const std::string state_dir =
      params.snapshot_path().substr(0, params.snapshot_path().rfind('/') + 1);
  saved.set_memory_file(absl::StartsWith(mem_path, state_dir) &&
                                mem_path.find('/', state_dir.size()) ==
                                    std::string::npos
                            ? mem_path.substr(state_dir.size())
                            : mem_path);
  saved.set_memory_bytes(static_cast<uint64_t>(st.st_size));
  std::string line;
  (void)google::protobuf::util::MessageToJsonString(saved, &line);
  line.push_back('\n');
  absl::StatusOr<UniqueFd> state =
      OpenFd(params.snapshot_path(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
             0600);
  if (!state.ok()) return Fault(400, std::string(state.status().message()));
  if (absl::Status wrote = WriteAll(state->get(), line, params.snapshot_path());
      !wrote.ok()) {
    return Fault(400, std::string(wrote.message()));
  }
  absl::StatusOr<qemu::QmpClient> qmp = qemu::QmpClient::Connect(
      absl::StrCat(scratch_, "/qmp.sock"), absl::Seconds(2));
  if (!qmp.ok()) return Fault(400, std::string(qmp.status().message()));
  if (absl::Status saved_state =
          qemu::SaveDeviceState(*qmp, state->get(), absl::Seconds(60));
      !saved_state.ok()) {
    return Fault(400, absl::StrCat("Create snapshot error: ",
                                   saved_state.message()));
  }
  unlink(mem_path.c_str());
  if (absl::StatusOr<DiskReport> copied = CreateWritableDisk(
          mem_path, static_cast<uint64_t>(st.st_size), memory);
      !copied.ok()) {
    return Fault(400, absl::StrCat("Create snapshot error: ",
                                   copied.status().message()));
  }
  return {204, ""};
}

HttpAnswer Standin::ServeFromMemoryServer(const std::string& socket,
                                          const std::string& memory_file) {
  const absl::Time start = absl::Now();
  absl::StatusOr<UniqueFd> file = OpenFd(memory_file, O_RDONLY | O_CLOEXEC);
  if (!file.ok()) return Fault(400, std::string(file.status().message()));
  struct stat st;
  if (fstat(file->get(), &st) != 0 || st.st_size == 0) {
    return Fault(400, absl::StrCat("Load snapshot error: ", memory_file,
                                   " is empty"));
  }
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  absl::StatusOr<uffd::testing::FakeFirecracker> memory =
      uffd::testing::FakeFirecracker::Create(1, bytes);
  if (!memory.ok()) return Fault(400, std::string(memory.status().message()));
  // Firecracker 1.16's handshake: the regions with both page-size
  // fields, the uffd with it.
  absl::StatusOr<UniqueFd> connection = memory->Connect(socket);
  absl::Status sent = connection.status();
  if (sent.ok()) {
    sent = uffd::testing::FakeFirecracker::Send(
        connection->get(), memory->Handshake("1.12"), {memory->uffd()});
  }
  if (!sent.ok()) {
    return Fault(400, absl::StrCat("Load snapshot error: the memory server at ",
                                   socket, ": ", sent.message()));
  }
  void* expected =
      mmap(nullptr, bytes, PROT_READ, MAP_SHARED, file->get(), 0);
  if (expected == MAP_FAILED) {
    return Fault(400, absl::StrCat("Load snapshot error: mmap of ",
                                   memory_file, ": ", strerror(errno)));
  }
  // The pages a guest had touched are the file's data (a snapshot's copy
  // keeps holes for the rest): the guest's first reads after a restore.
  uint64_t pages = 0, differ = 0;
  constexpr uint64_t kPage = 4096;
  for (off_t at = lseek(file->get(), 0, SEEK_DATA); at >= 0;) {
    off_t end = lseek(file->get(), at, SEEK_HOLE);
    if (end < 0) end = static_cast<off_t>(bytes);
    for (uint64_t page = static_cast<uint64_t>(at) / kPage * kPage;
         page < static_cast<uint64_t>(end); page += kPage) {
      ++pages;
      if (memcmp(memory->memory() + page,
                 static_cast<const uint8_t*>(expected) + page, kPage) != 0) {
        ++differ;
      }
    }
    at = lseek(file->get(), end, SEEK_DATA);
  }
  munmap(expected, bytes);
  const absl::Duration took = absl::Now() - start;
  std::fprintf(stderr,
               "stand-in firecracker: uffd restore through %s: %llu pages "
               "(%llu MiB) touched in %lld ms, %llu differ from %s\n",
               socket.c_str(), static_cast<unsigned long long>(pages),
               static_cast<unsigned long long>(pages * kPage >> 20),
               static_cast<long long>(absl::ToInt64Milliseconds(took)),
               static_cast<unsigned long long>(differ), memory_file.c_str());
  if (differ != 0) {
    return Fault(400, absl::StrCat("Load snapshot error: ", differ, " of ",
                                   pages, " pages served by ", socket,
                                   " differ from ", memory_file));
  }
  uffd_memory_.emplace(std::move(*memory));
  uffd_socket_ = std::move(*connection);
  return {204, ""};
}

HttpAnswer Standin::LoadSnapshot(const std::string& body) {
  if (started_ || configured_) {
    return Fault(400,
                 "Loading a microVM snapshot not allowed after configuring "
                 "boot-specific resources.");
  }
  SnapshotLoadParams params;
  if (!Parse(body, &params)) return Fault(400, "bad body");
  absl::StatusOr<UniqueFd> state =
      OpenFd(params.snapshot_path(), O_RDONLY | O_CLOEXEC);
  if (!state.ok()) {
    return Fault(400, absl::StrCat("Load snapshot error: ",
                                   state.status().message()));
  }
  // The JSON line, read byte by byte so the fd stays at QEMU's stream.
  std::string line;
  for (char c; line.size() < (1 << 20);) {
    if (read(state->get(), &c, 1) != 1) break;
    if (c == '\n') break;
    line.push_back(c);
  }
  testing::StandinSnapshot saved;
  if (!Parse(line, &saved) || !saved.has_boot()) {
    return Fault(400, absl::StrCat("Load snapshot error: ",
                                   params.snapshot_path(),
                                   " is not a snapshot's state file"));
  }
  if (saved.has_machine()) machine_ = saved.machine();
  boot_ = saved.boot();
  drives_.assign(saved.drives().begin(), saved.drives().end());
  nics_.assign(saved.nics().begin(), saved.nics().end());
  if (saved.has_mmds_config()) mmds_config_ = saved.mmds_config();
  if (saved.has_vsock()) vsock_ = saved.vsock();
  for (const NetworkOverride& o : params.network_overrides()) {
    bool found = false;
    for (NetworkInterface& nic : nics_) {
      if (nic.iface_id() == o.iface_id()) {
        nic.set_host_dev_name(o.host_dev_name());
        found = true;
      }
    }
    if (!found) {
      return Fault(400, absl::StrCat("Load snapshot error: no interface '",
                                     o.iface_id(), "' in the snapshot"));
    }
  }
  // As Firecracker does, the saved drive paths are opened as they are.
  for (const Drive& drive : drives_) {
    if (access(drive.path_on_host().c_str(),
               drive.is_read_only() ? R_OK : R_OK | W_OK) != 0) {
      return Fault(400, absl::StrCat("Load snapshot error: drive '",
                                     drive.drive_id(), "' at ",
                                     drive.path_on_host(), ": ",
                                     strerror(errno)));
    }
  }
  const std::string dir =
      params.snapshot_path().substr(0, params.snapshot_path().rfind('/') + 1);
  const std::string saved_memory =
      absl::StartsWith(saved.memory_file(), "/")
          ? saved.memory_file()
          : absl::StrCat(dir, saved.memory_file());
  const MemoryBackend& backend = params.mem_backend();
  std::string memory = saved_memory;
  if (backend.backend_type() == "Uffd") {
    HttpAnswer served = ServeFromMemoryServer(backend.backend_path(),
                                              saved_memory);
    if (served.status != 204) return served;
  } else if (backend.backend_type() == "File") {
    memory = backend.backend_path();
  } else {
    return Fault(400, "mem_backend: File or Uffd");
  }
  struct stat st;
  if (stat(memory.c_str(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != saved.memory_bytes()) {
    return Fault(400, absl::StrCat("Load snapshot error: the memory file ",
                                   memory, " is not the snapshot's ",
                                   saved.memory_bytes(), " bytes"));
  }
  if (std::optional<HttpAnswer> failed = StartMmds()) return *failed;
  qemu::Launch launch;
  launch.memory_file = memory;
  launch.memory_shared = false;
  launch.incoming = true;
  if (std::optional<HttpAnswer> failed = StartQemu(launch)) return *failed;
  auto fail = [&](const std::string& why) {
    (void)qemu_->Kill();
    qemu_.reset();
    return Fault(400, absl::StrCat("Load snapshot error: ", why));
  };
  absl::StatusOr<qemu::QmpClient> qmp = qemu::ConnectToStarting(
      *qemu_, absl::StrCat(scratch_, "/qmp.sock"), absl::Seconds(20));
  if (!qmp.ok()) return fail(std::string(qmp.status().message()));
  if (absl::Status loaded =
          qemu::LoadDeviceState(*qmp, state->get(), absl::Seconds(60));
      !loaded.ok()) {
    return fail(std::string(loaded.message()));
  }
  paused_ = true;
  if (params.resume_vm()) {
    if (absl::Status cont = qmp->Execute("cont").status(); !cont.ok()) {
      return fail(std::string(cont.message()));
    }
    paused_ = false;
  }
  started_ = true;
  return {204, ""};
}

int Standin::WaitForTheVm() {
  mu_.LockWhen(absl::Condition(
      +[](bool* started) { return *started; }, &started_));
  Subprocess& qemu = *qemu_;
  mu_.Unlock();
  absl::StatusOr<ExitStatus> exit = qemu.Wait();
  if (!exit.ok()) return 1;
  return exit->signaled ? 128 + exit->signal : exit->code;
}

}  // namespace
}  // namespace fcvm::runner::firecracker

int main(int argc, char** argv) {
  std::string api, id = "anonymous-instance";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      std::printf("Firecracker v%s (fcvm stand-in: the VM runs under QEMU)\n",
                  fcvm::runner::firecracker::kVersion);
      return 0;
    }
    if (arg == "--api-sock" && i + 1 < argc) api = argv[++i];
    if (arg == "--id" && i + 1 < argc) id = argv[++i];
  }
  if (api.empty()) {
    std::cerr << "standin_firecracker: --api-sock PATH is required\n";
    return 2;
  }
  std::optional<fcvm::runner::firecracker::testing::OpenApiSpec> spec;
  if (const char* path = std::getenv("FCVM_STANDIN_SPEC"); path && *path) {
    absl::StatusOr<fcvm::runner::firecracker::testing::OpenApiSpec> loaded =
        fcvm::runner::firecracker::testing::OpenApiSpec::Load(path);
    if (!loaded.ok()) {
      std::cerr << "standin_firecracker: " << loaded.status() << "\n";
      return 1;
    }
    spec.emplace(std::move(*loaded));
  }
  // QEMU's QMP socket and, while it boots, the guest's RAM file: in a
  // directory beside the API socket (the VM's), so that whatever a killed
  // stand-in leaves goes with the VM's directory.
  const std::string scratch =
      api.substr(0, api.rfind('/') + 1) + "standin";
  if (mkdir(scratch.c_str(), 0700) != 0 && errno != EEXIST) {
    std::perror(scratch.c_str());
    return 1;
  }
  fcvm::runner::firecracker::Standin standin(id, std::move(spec), scratch);
  absl::StatusOr<std::unique_ptr<fcvm::testing::HttpTestServer>> server =
      fcvm::testing::HttpTestServer::StartUnix(
          api, [&](const fcvm::testing::HttpRequest& request) {
            return standin.Handle(request);
          });
  if (!server.ok()) {
    std::cerr << "standin_firecracker: " << server.status() << "\n";
    return 1;
  }
  const int code = standin.WaitForTheVm();
  server->reset();
  unlink(absl::StrCat(scratch, "/qmp.sock").c_str());
  rmdir(scratch.c_str());
  unlink(api.c_str());
  return code;
}
