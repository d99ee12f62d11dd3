#include "runner/vmm/qemu/argv.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace fcvm::runner::qemu {

std::string QemuOptValue(absl::string_view value) {
  // QemuOpts splits options at ',' and reads ",," as one literal comma.
  return absl::StrReplaceAll(value, {{",", ",,"}});
}

std::string PlatformBootArgs(const std::string& arch, bool fw_cfg) {
  // microvm,acpi=off has no ACPI tables: say so, or the kernel logs an error
  // looking for them; reboot=t makes a reset end the VM; panic=-1 reboots
  // (so ends QEMU, with -no-reboot) at once on a panic.
  if (arch == "x86_64") {
    return absl::StrCat("console=ttyS0 reboot=t acpi=off panic=-1",
                        fw_cfg ? " qemu_fw_cfg.ioport=12@0x510:0:1:4" : "");
  }
  return "console=ttyAMA0 panic=-1";
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> QemuArgv(
    const VmSpec& spec, const Launch& launch) {
  const bool x86 = spec.arch() == "x86_64";
  if (!x86 && spec.arch() != "aarch64") {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM '", spec.name(), "': unknown architecture '", spec.arch(), "'"));
  }
  if (spec.kernel().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM '", spec.name(), "': no kernel"));
  }
  if (launch.accel != "kvm" && launch.accel != "tcg") {
    return absl::InvalidArgumentError(
        absl::StrCat("accelerator '", launch.accel, "': kvm or tcg"));
  }
  const bool kvm = launch.accel == "kvm";
  std::vector<std::string> argv;
  // The memory-backend property names the backend object below.
  const std::string memory_property =
      launch.memory_file.empty() ? "" : ",memory-backend=mem";
  if (x86) {
    argv = {"qemu-system-x86_64", "-M",
            absl::StrCat("microvm,acpi=off", memory_property)};
    if (kvm) argv.insert(argv.end(), {"-cpu", "host"});
  } else {
    argv = {"qemu-system-aarch64", "-M", absl::StrCat("virt", memory_property),
            "-cpu", kvm ? "host" : "cortex-a57"};
  }
  const uint32_t memory_mib = spec.memory_mib() == 0 ? 512 : spec.memory_mib();
  const bool fw_cfg = !launch.plan_file.empty() || !launch.fw_cfg.empty();
  argv.insert(
      argv.end(),
      {"-accel", launch.accel, "-m", absl::StrCat(memory_mib), "-smp",
       absl::StrCat(spec.vcpus() == 0 ? 1 : spec.vcpus()), "-nodefaults",
       "-no-user-config", "-display", "none", "-serial", launch.console,
       "-no-reboot", "-kernel", spec.kernel(), "-append",
       absl::StrCat(PlatformBootArgs(spec.arch(), fw_cfg), " ",
                    spec.boot_args()),
       "-device", "virtio-rng-device"});
  if (!spec.initrd().empty())
    argv.insert(argv.end(), {"-initrd", spec.initrd()});
  if (!launch.memory_file.empty()) {
    // Its size must be -m's, or QEMU refuses the machine.
    argv.insert(argv.end(),
                {"-object",
                 absl::StrCat("memory-backend-file,id=mem,size=", memory_mib,
                              "M,mem-path=", QemuOptValue(launch.memory_file),
                              ",share=", launch.memory_shared ? "on" : "off")});
  }
  // virt (aarch64) probes virtio-mmio slots from the top: the device added
  // last becomes vda. Add drives in reverse there so vda is disks[0].
  const int disks = spec.disks_size();
  for (int k = 0; k < disks; ++k) {
    const int i = x86 ? k : disks - 1 - k;
    const Disk& disk = spec.disks(i);
    argv.insert(argv.end(),
                {"-drive",
                 absl::StrCat("id=d", i, ",file=", QemuOptValue(disk.path()),
                              ",format=raw,if=none",
                              disk.read_only() ? ",readonly=on" : ""),
                 "-device", absl::StrCat("virtio-blk-device,drive=d", i)});
  }
  for (int i = 0; i < spec.nics_size(); ++i) {
    const Nic& nic = spec.nics(i);
    const std::string id = absl::StrCat("n", i);
    std::string netdev;
    switch (nic.backend_case()) {
      case Nic::kTap:
        netdev =
            absl::StrCat("tap,id=", id, ",ifname=", QemuOptValue(nic.tap()),
                         ",script=no,downscript=no");
        break;
      case Nic::kUser: {
        const UserNet& user = nic.user();
        netdev =
            absl::StrCat("user,id=", id, user.isolated() ? ",restrict=on" : "");
        if (!user.net().empty()) absl::StrAppend(&netdev, ",net=", user.net());
        for (const PublishedPort& port : user.forwards()) {
          absl::StrAppend(
              &netdev,
              ",hostfwd=", port.protocol().empty() ? "tcp" : port.protocol(),
              ":127.0.0.1:", port.host_port(), "-:", port.guest_port());
        }
        if (!user.guestfwd_address().empty()) {
          absl::StrAppend(&netdev, ",guestfwd=tcp:", user.guestfwd_address(),
                          "-cmd:", QemuOptValue(user.guestfwd_command()));
        }
        break;
      }
      default:
        netdev = absl::StrCat("hubport,id=", id, ",hubid=", i);
        break;
    }
    std::string device = absl::StrCat("virtio-net-device,netdev=", id);
    if (!nic.guest_mac().empty())
      absl::StrAppend(&device, ",mac=", nic.guest_mac());
    argv.insert(argv.end(), {"-netdev", netdev, "-device", device});
  }
  if (!launch.plan_file.empty()) {
    argv.insert(argv.end(),
                {"-fw_cfg", absl::StrCat("name=opt/fcvm/plan,file=",
                                         QemuOptValue(launch.plan_file))});
  }
  for (const auto& [name, file] : launch.fw_cfg) {
    argv.insert(argv.end(),
                {"-fw_cfg", absl::StrCat("name=", QemuOptValue(name),
                                         ",file=", QemuOptValue(file))});
  }
  if (spec.vsock_cid() >= 3) {
    argv.insert(argv.end(),
                {"-device", absl::StrCat("vhost-vsock-device,guest-cid=",
                                         spec.vsock_cid())});
  }
  if (!launch.channel_socket.empty()) {
    // wait=off: QEMU runs before the hub connects; until it does, and
    // until the guest opens the port, bytes wait in the socket.
    argv.insert(argv.end(),
                {"-device", "virtio-serial-device,max_ports=2", "-chardev",
                 absl::StrCat("socket,id=channel,path=",
                              QemuOptValue(launch.channel_socket),
                              ",server=on,wait=off"),
                 "-device",
                 "virtserialport,chardev=channel,name=org.fcvm.channel.0"});
  }
  if (!launch.qmp_socket.empty()) {
    argv.insert(argv.end(),
                {"-qmp", absl::StrCat("unix:", QemuOptValue(launch.qmp_socket),
                                      ",server=on,wait=off")});
  }
  if (launch.incoming) argv.insert(argv.end(), {"-incoming", "defer"});
  return argv;
}

}  // namespace fcvm::runner::qemu
