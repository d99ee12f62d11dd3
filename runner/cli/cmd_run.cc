// fcvm run [FLAGS] IMAGE [ARGS...]: boots a VM whose agent runs IMAGE.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "runner/cli/cli.h"
#include "runner/storage/disk.h"
#include "runner/vmm/firecracker/backend.h"
#include "runner/net/rootless.h"
#include "runner/net/vm_network.h"
#include "runner/storage/oci_image.h"
#include "runner/state/process.h"
#include "runner/vmm/qemu/backend.h"
#include "runner/vm/run_flags.h"
#include "runner/vm/supervisor.h"
#include "runner/storage/volume.h"

namespace fcvm::runner {
namespace {

constexpr uint64_t kWritableDiskBytes = uint64_t{8} << 30;  // Sparse.

std::string RandomHex(int bytes) {
  std::string raw(bytes, '\0');
  if (getrandom(raw.data(), raw.size(), 0) != bytes) raw.assign(bytes, '\x5a');
  return absl::BytesToHexString(raw);
}

// "docker.io/library/nginx:1.25" -> "nginx".
std::string NameFromImage(const std::string& image) {
  std::string base = image.substr(image.find_last_of('/') + 1);
  base = base.substr(0, base.find_first_of(":@"));
  std::string name;
  for (char c : absl::AsciiStrToLower(base)) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_') name.push_back(c);
  }
  if (name.empty() || !absl::ascii_isalnum(name[0])) name = "vm";
  return absl::StrCat(name.substr(0, 30), "-", RandomHex(2));
}

// `wanted` on 127.0.0.1 if it is free and unprivileged, else a free
// ephemeral port.
uint32_t PickHostPort(uint32_t wanted, const std::string& protocol) {
  const int type = protocol == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  for (uint32_t port : {wanted >= 1024 ? wanted : 0u, 0u}) {
    const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    socklen_t length = sizeof(address);
    const bool ok =
        fd >= 0 &&
        bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (fd >= 0) close(fd);
    if (ok) return ntohs(address.sin_port);
  }
  return 0;
}

// The host's DNS servers, for a guest on a TAP (loopback resolvers, like
// systemd-resolved's stub, are unreachable from the guest: left out).
std::vector<std::string> HostNameservers() {
  std::vector<std::string> servers;
  absl::StatusOr<std::string> conf = ReadFile("/etc/resolv.conf");
  if (!conf.ok()) return servers;
  for (absl::string_view line : absl::StrSplit(*conf, '\n')) {
    std::vector<std::string> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.size() >= 2 && words[0] == "nameserver" &&
        !absl::StartsWith(words[1], "127.") &&
        words[1].find(':') == std::string::npos) {
      servers.push_back(words[1]);
    }
  }
  return servers;
}

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

int RunCommand(Cli& cli, const std::vector<std::string>& args) {
  absl::StatusOr<RunFlags> flags = ParseRunFlags(args, std::getenv);
  if (!flags.ok()) return Complain(2, std::string(flags.status().message()));
  if (cli.kernel.empty() || cli.rootfs.empty()) {
    return Complain(2,
                    "no guest kernel or root filesystem: give --kernel and "
                    "--rootfs, or use `bazel run //runner:vm`, which does");
  }
  for (const std::string& asset : {cli.kernel, cli.rootfs}) {
    if (!IsFile(asset))
      return Complain(1, absl::StrCat("no such file: ", asset));
  }
  // The backend. Firecracker needs KVM that really runs a guest, the
  // binary, and a TAP: root's, or one in a namespace of the VM's own
  // (pasta or slirp4netns installed). `auto` takes it when all are there.
  std::string why;
  const std::string accel =
      qemu::ChooseAccel(flags->backend == "firecracker" ? "kvm" : flags->accel,
                        cli.arch, cli.kernel, cli.store.root(), &why);
  const bool root = geteuid() == 0;
  const bool firecracker_possible =
      InPath("firecracker") && accel == "kvm" &&
      (root || net::ChooseRootlessHelper("auto").ok());
  const bool firecracker = flags->backend == "firecracker" ||
                           (flags->backend == "auto" && firecracker_possible);
  if (firecracker) {
    if (!InPath("firecracker")) {
      return Complain(1, "--backend=firecracker: no firecracker in PATH");
    }
    if (flags->network == "user") {
      return Complain(1,
                      "--backend=firecracker has no user-mode network of its "
                      "own: use --network tap (root), pasta or slirp4netns "
                      "(rootless), or none");
    }
    if (flags->network == "auto") flags->network = root ? "tap" : "rootless";
  }
  if (flags->network == "tap" && !root) {
    return Complain(1,
                    "--network=tap creates a TAP device and nftables rules on "
                    "the host: it needs root (rootless: the default, or "
                    "--network pasta|slirp4netns)");
  }
  if (flags->network == "rootless" || flags->network == net::kPasta ||
      flags->network == net::kSlirp4netns) {
    absl::StatusOr<std::string> helper = net::ChooseRootlessHelper(
        flags->network == "rootless" ? "auto" : flags->network);
    if (!helper.ok())
      return Complain(1, std::string(helper.status().message()));
    flags->network = *helper;
  }
  for (const VolumeFlag& volume : flags->volumes) {
    if (absl::Status ok = CheckVolume(volume); !ok.ok()) {
      return Complain(1, std::string(ok.message()));
    }
  }

  // A local image's exposed ports are published when the user published
  // none: with rootless networking the VM is unreachable otherwise.
  auto local = cli.oci.find(flags->image);
  const std::string archive_path =
      local != cli.oci.end() ? local->second
                             : (IsFile(flags->image) ? flags->image : "");
  if (flags->ports.empty() && !archive_path.empty() &&
      flags->network != "none") {
    absl::StatusOr<std::vector<agent::PortMapping>> exposed =
        ExposedPorts(archive_path);
    if (!exposed.ok())
      return Complain(1, std::string(exposed.status().message()));
    for (agent::PortMapping port : *exposed) {
      port.set_host_port(PickHostPort(port.guest_port(), port.protocol()));
      if (port.host_port() == 0) {
        return Complain(1, "no free port on 127.0.0.1 to publish on");
      }
      flags->ports.push_back(port);
    }
  }

  VmState state;
  state.set_name(flags->name.empty() ? NameFromImage(flags->image)
                                     : flags->name);
  state.set_id(RandomHex(8));
  state.set_phase(VmState::CREATING);
  state.set_backend(firecracker ? "firecracker" : "qemu");
  state.set_image(flags->image);
  state.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  for (const agent::PortMapping& port : flags->ports) *state.add_ports() = port;
  if (absl::Status created = cli.store.Create(state); !created.ok()) {
    return Complain(1, std::string(created.message()));
  }
  const std::string& name = state.name();
  auto fail = [&](const absl::Status& status) {
    (void)net::TearDownNetwork(state);
    (void)cli.store.Update(name, [&](VmState& s) {
      s.set_phase(VmState::FAILED);
      s.set_error(std::string(status.message()));
    });
    return Complain(125, absl::StrCat(name, ": ", status.message()));
  };

  // The writable disk: sparse, formatted by the guest's init.
  const std::string disk = absl::StrCat(state.dir(), "/disk.img");
  absl::StatusOr<DiskReport> made =
      CreateWritableDisk(disk, kWritableDiskBytes);
  if (!made.ok()) return fail(made.status());

  VmSpec& spec = *state.mutable_spec();
  spec.set_name(name);
  spec.set_arch(cli.arch);
  spec.set_kernel(cli.kernel);
  spec.set_boot_args(
      "root=/dev/vda ro rootfstype=ext4 init=/sbin/fcvm-init quiet");
  spec.set_vcpus(flags->cpus);
  spec.set_memory_mib(flags->memory_mib);
  Disk* base = spec.add_disks();
  base->set_path(cli.rootfs);
  base->set_read_only(true);
  spec.add_disks()->set_path(disk);

  agent::Plan& plan = *spec.mutable_plan();
  // A locally built image rides along as a read-only drive (vdc).
  if (!archive_path.empty()) {
    Disk* archive = spec.add_disks();
    archive->set_path(archive_path);
    archive->set_read_only(true);
    plan.set_image("oci-archive:/dev/vdc");
  } else {
    plan.set_image(flags->image);  // Pulled inside the VM.
  }
  // Volumes: more drives, mounted by the agent for the container.
  for (size_t i = 0; i < flags->volumes.size(); ++i) {
    absl::StatusOr<VolumeDrive> drive =
        PrepareVolume(flags->volumes[i], static_cast<int>(i), state.dir());
    if (!drive.ok()) return fail(drive.status());
    Disk* disk_spec = spec.add_disks();
    disk_spec->set_path(drive->path);
    disk_spec->set_read_only(drive->read_only);
    agent::VolumeMount* mount = plan.add_volumes();
    mount->set_block_device(
        absl::StrCat("/dev/vd", std::string(1, 'a' + spec.disks_size() - 1)));
    mount->set_container_path(flags->volumes[i].guest_path);
    mount->set_read_only(drive->read_only);
    std::fprintf(stderr, "fcvm: %s: volume %s (%s) at %s%s\n", name.c_str(),
                 flags->volumes[i].host_path.c_str(), drive->how.c_str(),
                 flags->volumes[i].guest_path.c_str(),
                 drive->read_only ? ", read-only" : "");
  }
  for (const std::string& arg : flags->args) plan.add_args(arg);
  for (const auto& [key, value] : flags->env)
    (*plan.mutable_env())[key] = value;
  for (const agent::PortMapping& port : flags->ports) *plan.add_ports() = port;
  plan.set_restart(flags->restart);
  plan.set_hostname(name);
  plan.set_generation(1);
  plan.set_host_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  std::string entropy(32, '\0');
  if (getrandom(entropy.data(), entropy.size(), 0) == 32)
    plan.set_entropy(entropy);
  plan.set_machine_id(RandomHex(16));

  if (flags->network == "tap" || flags->network == net::kPasta ||
      flags->network == net::kSlirp4netns) {
    // A TAP and a /30 of its own; published ports are DNAT rules in fcvm's
    // nftables table. Privileged: on the host, for every local address.
    // Rootless: in the VM's own namespaces (the supervisor builds them),
    // reached through pasta's or slirp4netns's forwards on 127.0.0.1.
    absl::Status up =
        flags->network == "tap"
            ? net::SetUpTapNetwork(cli.store, state)
            : net::AllocateTapNetwork(cli.store, flags->network, state);
    if (!up.ok()) return fail(up);
    const NetworkState& net = state.network();
    Nic* nic = spec.add_nics();
    nic->set_tap(net.tap());
    nic->set_guest_mac(net.guest_mac());
    agent::NetworkIdentity* identity = plan.mutable_network();
    identity->set_ip_cidr(absl::StrCat(net.guest_ip(), "/30"));
    identity->set_gateway(net.host_ip());
    identity->set_mac(net.guest_mac());
    if (flags->network == net::kSlirp4netns) {
      identity->add_dns("10.0.2.3");  // slirp4netns's resolver.
    } else {
      for (const std::string& dns : HostNameservers()) identity->add_dns(dns);
    }
  } else if (flags->network != "none") {
    // Rootless networking: QEMU's user-mode stack; published ports are
    // forwards on 127.0.0.1.
    UserNet* user = spec.add_nics()->mutable_user();
    user->set_net("10.0.2.0/24");
    for (const agent::PortMapping& port : flags->ports)
      *user->add_forwards() = port;
    agent::NetworkIdentity* identity = plan.mutable_network();
    identity->set_ip_cidr("10.0.2.15/24");
    identity->set_gateway("10.0.2.2");
    identity->add_dns("10.0.2.3");
    NetworkState* network = state.mutable_network();
    network->set_mode("user");
    network->set_guest_ip("10.0.2.15");
  } else {
    state.mutable_network()->set_mode("none");
  }

  state.set_accel(firecracker ? "kvm" : accel);
  const VmSpec final_spec = spec;
  const std::string accel_why = why;
  absl::Status saved = cli.store
                           .Update(name,
                                   [&](VmState& s) {
                                     *s.mutable_spec() = final_spec;
                                     *s.mutable_ports() = state.ports();
                                     *s.mutable_network() = state.network();
                                     s.set_accel(state.accel());
                                     s.set_backend(state.backend());
                                     s.set_disk(disk);
                                   })
                           .status();
  if (!saved.ok()) return fail(saved);
  std::unique_ptr<Vmm> backend;
  if (firecracker) {
    backend = std::make_unique<firecracker::FirecrackerVmm>();
  } else {
    backend = std::make_unique<qemu::QemuVmm>(accel);
  }
  Vmm& vmm = *backend;
  std::fprintf(stderr, "fcvm: %s: %s, %s; writable disk %s in %s\n",
               name.c_str(), vmm.Describe().c_str(), accel_why.c_str(),
               made->method.c_str(), absl::FormatDuration(made->took).c_str());

  auto record_supervisor = [&](pid_t pid) {
    const uint64_t ticks = StartTicks(pid);
    (void)cli.store.Update(name, [&](VmState& s) {
      s.set_supervisor_pid(pid);
      s.set_supervisor_start_ticks(ticks);
    });
  };

  if (!flags->detach) {
    record_supervisor(getpid());
    SuperviseOptions options;
    options.progress = true;
    return Supervise(cli.store, name, vmm, options);
  }

  // --detach: a supervisor of its own session keeps the VM; we wait until
  // the container is ready (or the VM failed) and leave.
  const pid_t child = fork();
  if (child < 0) return fail(absl::InternalError("fork failed"));
  if (child == 0) {
    setsid();
    const int null = open("/dev/null", O_RDWR);
    const int log = open(absl::StrCat(state.dir(), "/supervisor.log").c_str(),
                         O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(null, 0);
    dup2(log >= 0 ? log : null, 1);
    dup2(log >= 0 ? log : null, 2);
    record_supervisor(getpid());
    SuperviseOptions options;
    options.progress = true;  // Into supervisor.log.
    _exit(Supervise(cli.store, name, vmm, options));
  }
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  for (;;) {
    absl::StatusOr<VmState> now = cli.store.Read(name);
    if (now.ok() && now->phase() == VmState::RUNNING) {
      std::printf("%s\n", name.c_str());
      for (const agent::PortMapping& port : now->ports()) {
        std::fprintf(stderr, "fcvm: %s: guest port %u/%s is at 127.0.0.1:%u\n",
                     name.c_str(), port.guest_port(), port.protocol().c_str(),
                     port.host_port());
      }
      return 0;
    }
    if (now.ok() &&
        (now->phase() == VmState::EXITED || now->phase() == VmState::FAILED)) {
      return Complain(
          now->phase() == VmState::EXITED ? now->exit_code() : 125,
          absl::StrCat(name, ": ended before it was ready: ",
                       now->error().empty()
                           ? absl::StrCat("exit code ", now->exit_code())
                           : now->error(),
                       " (fcvm logs ", name, ")"));
    }
    if (absl::Now() > deadline) {
      return Complain(1, absl::StrCat(name,
                                      ": not ready after 10 minutes; it "
                                      "keeps booting (fcvm logs --console ",
                                      name, ")"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace fcvm::runner
