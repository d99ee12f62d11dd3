#include "runner/vm/launch.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/plan.h"
#include "base/status.h"
#include "runner/net/tap_network.h"
#include "runner/state/state_store.h"
#include "runner/vm/backends.h"

namespace fcvm::runner {
namespace {

constexpr char kBootArgs[] = " ro rootfstype=ext4 init=/sbin/fcvm-init quiet";

struct Choice {
  std::string backend, accel, backend_why, accel_why;
};

bool CanRootless(const HostFacts& facts) {
  return facts.pasta || facts.slirp4netns;
}

// The backend and accelerator, and why.
[[nodiscard]] absl::StatusOr<Choice> ChooseBackend(const RunFlags& flags,
                                                   const HostFacts& facts) {
  const bool root = facts.euid == 0;
  const std::string qemu_binary =
      absl::StrCat("qemu-system-", facts.guest_arch);
  auto qemu = [&](std::string why) -> absl::StatusOr<Choice> {
    if (!facts.qemu) {
      return absl::FailedPreconditionError(
          absl::StrCat(why, "; and there is no ", qemu_binary,
                       " (Debian package qemu-system-",
                       facts.guest_arch == "aarch64" ? "arm" : "x86", ")"));
    }
    Choice c{kQemu, "tcg", why, ""};
    if (flags.accel == "kvm" || flags.accel == "tcg") {
      c.accel = flags.accel;
      c.accel_why = "as requested";
    } else if (facts.kvm_qemu.works) {
      c.accel = "kvm";
      c.accel_why = facts.kvm_qemu.why;
    } else {
      c.accel_why =
          facts.kvm_qemu.why.empty() ? "KVM not checked" : facts.kvm_qemu.why;
    }
    return c;
  };
  if (flags.backend == kQemu) return qemu("as requested");
  const bool fc_installed = !facts.firecracker.empty();
  if (flags.backend == kFirecracker) {
    if (!fc_installed) {
      return absl::FailedPreconditionError(
          "--backend=firecracker: no firecracker in PATH (install a "
          "Firecracker release, or --backend qemu)");
    }
    if (!facts.kvm_firecracker.works) {
      return absl::FailedPreconditionError(
          absl::StrCat("--backend=firecracker needs KVM that runs a guest; ",
                       facts.kvm_firecracker.why));
    }
    return Choice{kFirecracker, "kvm", "as requested",
                  facts.kvm_firecracker.why};
  }
  // auto: Firecracker where it can run (binary, KVM that runs a guest, a
  // TAP: root's or a rootless helper's, and a network it can have).
  std::string why;
  if (!fc_installed) {
    why = "no firecracker in PATH";
  } else if (!facts.kvm_firecracker.works) {
    why = absl::StrCat("firecracker: ", facts.kvm_firecracker.why);
  } else if (!root && !CanRootless(facts)) {
    why = "firecracker needs a TAP: root, or pasta or slirp4netns";
  } else if (flags.network == "user") {
    why = "--network user is QEMU's";
  } else {
    return Choice{kFirecracker, "kvm",
                  "auto: firecracker is installed and KVM runs a guest",
                  facts.kvm_firecracker.why};
  }
  return qemu(absl::StrCat("auto: ", why));
}

[[nodiscard]] absl::StatusOr<std::string> ChooseNetwork(
    const RunFlags& flags, const HostFacts& facts, const std::string& backend) {
  const bool root = facts.euid == 0;
  std::string mode = flags.network;
  if (mode == "auto") {
    mode = backend == kFirecracker ? (root ? "tap" : "rootless") : "user";
  }
  if (backend == kFirecracker && mode == "user") {
    return absl::InvalidArgumentError(
        "--backend=firecracker has no user-mode network of its own: use "
        "--network tap (root), pasta or slirp4netns (rootless), or none");
  }
  if (mode == "tap" && !root) {
    return absl::PermissionDeniedError(
        "--network=tap creates a TAP device and nftables rules on the "
        "host: it needs root (rootless: --network pasta|slirp4netns)");
  }
  if (mode == "rootless") {
    if (facts.pasta) return std::string(net::kPasta);
    if (facts.slirp4netns) return std::string(net::kSlirp4netns);
    return absl::FailedPreconditionError(
        "rootless networking needs pasta or slirp4netns, and neither is "
        "installed (Debian packages passt, slirp4netns)");
  }
  if (mode == net::kPasta && !facts.pasta) {
    return absl::FailedPreconditionError(
        "--network=pasta: no pasta in PATH (Debian package passt)");
  }
  if (mode == net::kSlirp4netns && !facts.slirp4netns) {
    return absl::FailedPreconditionError(
        "--network=slirp4netns: no slirp4netns in PATH (Debian package "
        "slirp4netns)");
  }
  return mode;
}

}  // namespace

agent::PortMapping ToPlanPort(const PublishedPort& port) {
  agent::PortMapping mapping;
  mapping.set_host_port(port.host_port());
  mapping.set_guest_port(port.guest_port());
  mapping.set_protocol(port.protocol().empty() ? "tcp" : port.protocol());
  return mapping;
}

// The plan as the agent will read it: refused here with the agent's own
// words, naming the VM.
[[nodiscard]] absl::Status CheckPlan(const VmState& state) {
  return Annotate(agent::ValidatePlan(state.spec().plan()),
                  absl::StrCat("VM '", state.name(), "': its plan"));
}

std::string NameFromImage(const std::string& image, const std::string& suffix) {
  std::string base = image.substr(image.find_last_of('/') + 1);
  base = base.substr(0, base.find_first_of(":@"));
  if (absl::EndsWith(base, ".tar")) base.resize(base.size() - 4);
  std::string name;
  for (char c : absl::AsciiStrToLower(base)) {
    if (absl::ascii_isalnum(c)) {
      name.push_back(c);
    } else if ((c == '-' || c == '_' || c == '.') && !name.empty() &&
               name.back() != '-') {
      name.push_back('-');  // Hostnames have no '_' or '.'.
    }
  }
  name = name.substr(0, 30);
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty()) name = "vm";
  return absl::StrCat(name, "-", suffix);
}

void ApplyKeeping(const RunFlags& flags, int64_t now_unix_ms, VmState& state) {
  for (const auto& [key, value] : flags.labels) {
    (*state.mutable_labels())[key] = value;
  }
  if (flags.timeout_seconds > 0) {
    state.set_expires_unix_ms(now_unix_ms +
                              int64_t{1000} * flags.timeout_seconds);
  }
  state.set_remove_on_exit(flags.remove_on_exit);
  state.set_api_template(flags.api_template);
}

[[nodiscard]] absl::StatusOr<Launch> PlanLaunch(const RunFlags& flags,
                                                const HostFacts& facts,
                                                const LaunchSeeds& seeds) {
  if (facts.kernel.empty() || facts.rootfs.empty()) {
    return absl::FailedPreconditionError(
        "no guest kernel or root filesystem: install a release (fcvm setup "
        "install TARBALL), give --assets DIR or $FCVM_ASSETS (a release's "
        "share/fcvm), give --kernel and --rootfs, or use `bazel run "
        "//runner:vm`, which does");
  }
  if (seeds.id.size() != 16 || seeds.machine_id.size() != 32 ||
      seeds.entropy.size() != 32) {
    return absl::InternalError("launch seeds are incomplete");
  }
  ASSIGN_OR_RETURN(Choice choice, ChooseBackend(flags, facts));
  ASSIGN_OR_RETURN(std::string network,
                   ChooseNetwork(flags, facts, choice.backend));
  std::unique_ptr<Vmm> vmm =
      MakeVmm(choice.backend, choice.accel, facts.firecracker);

  Launch launch;
  launch.detach = flags.detach;
  VmState& state = launch.state;
  state.set_name(flags.name.empty()
                     ? NameFromImage(flags.image, seeds.name_suffix)
                     : flags.name);
  RETURN_IF_ERROR(ValidateVmName(state.name()));
  const std::string dir = absl::StrCat(facts.state_root, "/vms/", state.name());
  state.set_id(seeds.id);
  state.set_phase(VmState::CREATING);
  state.set_backend(choice.backend);
  state.set_accel(choice.accel);
  state.set_backend_reason(choice.backend_why);
  state.set_accel_reason(choice.accel_why);
  state.set_vmm_binary(choice.backend == kFirecracker
                           ? facts.firecracker
                           : absl::StrCat("qemu-system-", facts.guest_arch));
  state.set_image(flags.image);
  state.set_assets(facts.assets);
  state.set_created_unix_ms(seeds.now_unix_ms);
  state.set_log_max_bytes(flags.log_max_bytes);
  ApplyKeeping(flags, seeds.now_unix_ms, state);
  state.set_disk(absl::StrCat(dir, "/disk.img"));

  // Ports: the user's; else a local image's exposed ones, on free ports of
  // 127.0.0.1 (a rootless VM is unreachable otherwise).
  std::vector<PublishedPort> ports = flags.ports;
  const bool local_image =
      !facts.image_archive.empty() || !facts.image_rootfs.empty();
  if (ports.empty() && local_image && network != "none") {
    for (PublishedPort port : facts.exposed_ports) {
      auto free = facts.free_host_ports.find(port.guest_port());
      if (free == facts.free_host_ports.end() || free->second == 0) {
        return absl::ResourceExhaustedError(
            absl::StrCat("no free port on 127.0.0.1 to publish guest port ",
                         port.guest_port(), " on"));
      }
      port.set_host_port(free->second);
      ports.push_back(port);
    }
  }
  for (const PublishedPort& port : ports) *state.add_ports() = port;

  VmSpec& spec = *state.mutable_spec();
  spec.set_name(state.name());
  spec.set_arch(facts.guest_arch);
  spec.set_kernel(facts.kernel);
  spec.set_vcpus(flags.cpus);
  spec.set_memory_mib(flags.memory_mib);
  auto add_disk = [&](const std::string& path, bool read_only) {
    Disk* disk = spec.add_disks();
    disk->set_path(path);
    disk->set_read_only(read_only);
    disk->set_guest_device(vmm->GuestBlockDevice(spec.disks_size() - 1));
    return spec.disks_size() - 1;
  };
  add_disk(facts.rootfs, true);
  add_disk(state.disk(), false);
  spec.set_boot_args(
      absl::StrCat("root=", spec.disks(0).guest_device(), kBootArgs));

  agent::Plan& plan = *spec.mutable_plan();
  if (!facts.image_rootfs.empty()) {
    // A baked root filesystem rides along read-only; the agent runs it with
    // the image's config (Podman has no image to read it from).
    const int drive = add_disk(facts.image_rootfs, true);
    const rootfs::oci::ContainerConfig& config = facts.image_config;
    agent::RootfsImage& baked = *plan.mutable_rootfs();
    baked.set_device(spec.disks(drive).guest_device());
    baked.mutable_entrypoint()->CopyFrom(config.entrypoint());
    baked.mutable_cmd()->CopyFrom(config.cmd());
    baked.mutable_env()->CopyFrom(config.env());
    baked.set_user(config.user());
    baked.set_working_dir(config.working_dir());
    baked.set_stop_signal(config.stop_signal());
    plan.set_image(absl::StrCat("rootfs:", baked.device()));
  } else if (!facts.image_archive.empty()) {
    // A local image rides along as a read-only drive.
    const int archive = add_disk(facts.image_archive, true);
    plan.set_image(
        absl::StrCat("oci-archive:", spec.disks(archive).guest_device()));
  } else {
    plan.set_image(flags.image);  // Pulled inside the VM.
  }
  for (size_t i = 0; i < flags.volumes.size(); ++i) {
    const VolumeFlag& volume = flags.volumes[i];
    const std::string what =
        absl::StrCat("volume ", volume.host_path, ":", volume.guest_path);
    auto fact = facts.volumes.find(volume.host_path);
    const VolumeFact known =
        fact == facts.volumes.end() ? VolumeFact() : fact->second;
    VolumeToPrepare prepare{volume, static_cast<int>(i), 0, known.kind};
    std::string path = volume.host_path, how;
    bool read_only = volume.read_only;
    switch (known.kind) {
      case VolumeKind::kMissing:
        return absl::NotFoundError(absl::StrCat(what, ": ", known.error));
      case VolumeKind::kOther:
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": not a directory, disk image file or block device"));
      case VolumeKind::kFile:
        how = "disk image";
        break;
      case VolumeKind::kBlockDevice:
        how = "block device";
        break;
      case VolumeKind::kDirectory:
        if (!volume.read_only) {
          return absl::InvalidArgumentError(absl::StrCat(
              what,
              ": a directory is copied into the VM (a microVM has no shared "
              "filesystem), so what the container writes would never reach ",
              volume.host_path,
              "; mount it :ro, or give a disk image file for a writable "
              "volume"));
        }
        path = absl::StrCat(dir, "/volume-", i, ".ext4");
        how = "copy of a directory";
        read_only = true;
        break;
    }
    prepare.disk = add_disk(path, read_only);
    launch.volumes.push_back(prepare);
    agent::VolumeMount* mount = plan.add_volumes();
    mount->set_block_device(spec.disks(prepare.disk).guest_device());
    mount->set_container_path(volume.guest_path);
    mount->set_read_only(read_only);
    state.add_volumes(absl::StrCat(volume.host_path, " -> ", volume.guest_path,
                                   " (", how, ", ",
                                   spec.disks(prepare.disk).guest_device(),
                                   read_only ? ", read-only)" : ")"));
  }
  for (const std::string& arg : flags.args) plan.add_args(arg);
  for (const std::string& word : flags.entrypoint) plan.add_command(word);
  for (const auto& [key, value] : flags.env) (*plan.mutable_env())[key] = value;
  for (const PublishedPort& port : ports) *plan.add_ports() = ToPlanPort(port);
  plan.set_working_dir(flags.workdir);
  plan.set_user(flags.user);
  plan.set_restart(flags.restart);
  plan.set_stop_timeout_seconds(flags.stop_timeout_seconds);
  plan.set_hostname(state.name());
  plan.set_generation(1);
  plan.set_host_time_unix_ms(static_cast<uint64_t>(seeds.now_unix_ms));
  plan.set_entropy(seeds.entropy);
  plan.set_machine_id(seeds.machine_id);

  NetworkState& net = *state.mutable_network();
  net.set_mode(network);
  if (net::UsesTap(network)) {
    if (network == net::kSlirp4netns) {
      net.add_dns("10.0.2.3");  // slirp4netns's resolver.
    } else {
      for (const std::string& dns : facts.nameservers) net.add_dns(dns);
    }
    // Addresses come with the subnet (ApplySubnet).
  } else if (network == "user") {
    UserNet* user = spec.add_nics()->mutable_user();
    user->set_net("10.0.2.0/24");
    for (const PublishedPort& port : ports) *user->add_forwards() = port;
    agent::NetworkIdentity* identity = plan.mutable_network();
    identity->set_ip_cidr("10.0.2.15/24");
    identity->set_gateway("10.0.2.2");
    identity->add_dns("10.0.2.3");
    net.set_guest_ip("10.0.2.15");
    net.add_dns("10.0.2.3");
  }
  RETURN_IF_ERROR(CheckPlan(state));
  return launch;
}

[[nodiscard]] absl::Status ApplySubnet(const Subnet& subnet, Launch& launch) {
  VmState& state = launch.state;
  if (!net::UsesTap(state.network().mode())) {
    return absl::InternalError(absl::StrCat("VM '", state.name(), "': network ",
                                            state.network().mode(),
                                            " has no subnet"));
  }
  net::AssignTapNetwork(subnet, state);
  const NetworkState& net = state.network();
  Nic* nic = state.mutable_spec()->add_nics();
  nic->set_tap(net.tap());
  nic->set_guest_mac(net.guest_mac());
  agent::NetworkIdentity* identity =
      state.mutable_spec()->mutable_plan()->mutable_network();
  identity->set_ip_cidr(subnet.GuestCidr());
  identity->set_gateway(net.host_ip());
  identity->set_mac(net.guest_mac());
  for (const std::string& dns : net.dns()) identity->add_dns(dns);
  return CheckPlan(state);
}

}  // namespace fcvm::runner
