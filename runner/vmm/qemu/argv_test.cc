#include "runner/vmm/qemu/argv.h"

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner::qemu {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

VmSpec Spec(const std::string& arch) {
  VmSpec spec;
  spec.set_name("web");
  spec.set_arch(arch);
  spec.set_kernel("/k/vmlinux");
  spec.set_boot_args("root=/dev/vda ro");
  spec.add_disks()->set_path("/b/base.ext4");
  spec.mutable_disks(0)->set_read_only(true);
  spec.add_disks()->set_path("/v/disk.ext4");
  spec.set_vcpus(2);
  spec.set_memory_mib(1024);
  return spec;
}

std::string Line(const VmSpec& spec, const Launch& launch = {}) {
  absl::StatusOr<std::vector<std::string>> argv = QemuArgv(spec, launch);
  EXPECT_TRUE(argv.ok()) << argv.status();
  return argv.ok() ? absl::StrJoin(*argv, " ") : "";
}

TEST(QemuArgvTest, X86MicrovmWithDrivesInOrder) {
  const std::string line = Line(Spec("x86_64"));
  EXPECT_THAT(line, HasSubstr("qemu-system-x86_64 -M microvm,acpi=off "
                              "-accel tcg -m 1024 -smp 2 -nodefaults"));
  EXPECT_THAT(line, HasSubstr("-append console=ttyS0 reboot=t acpi=off "
                              "panic=-1 root=/dev/vda ro"));
  EXPECT_THAT(line,
              HasSubstr("-drive id=d0,file=/b/base.ext4,format=raw,if=none,"
                        "readonly=on -device virtio-blk-device,drive=d0 "
                        "-drive id=d1,file=/v/disk.ext4"));
  EXPECT_THAT(line, Not(HasSubstr("qemu_fw_cfg")));  // No fw_cfg, no ports.
}

TEST(QemuArgvTest, Aarch64VirtAddsDrivesInReverseSoVdaIsTheFirst) {
  const std::string line = Line(Spec("aarch64"));
  EXPECT_THAT(line, HasSubstr("qemu-system-aarch64 -M virt -cpu cortex-a57"));
  EXPECT_THAT(line, HasSubstr("console=ttyAMA0"));
  EXPECT_LT(line.find("drive=d1"), line.find("drive=d0"));
}

// Guest RAM in a file: the VM's own (shared, so a snapshot can copy it)
// or a snapshot's seen privately (a clone), the backend named by the
// machine on both CPUs, and a clone waits for its state.
TEST(QemuArgvTest, MemoryInAFileSharedOrPrivateAndIncoming) {
  Launch launch;
  launch.memory_file = "/run/fcvm/vms/web/memory";
  for (const char* arch : {"x86_64", "aarch64"}) {
    const std::string line = Line(Spec(arch), launch);
    EXPECT_THAT(line, HasSubstr(",memory-backend=mem ")) << arch;
    EXPECT_THAT(line, HasSubstr("-object memory-backend-file,id=mem,"
                                "size=1024M,mem-path=/run/fcvm/vms/web/"
                                "memory,share=on"))
        << arch;
    EXPECT_THAT(line, Not(HasSubstr("-incoming"))) << arch;
  }
  launch.memory_shared = false;
  launch.memory_file = "/snap/t,1/memory";
  launch.incoming = true;
  const std::string clone = Line(Spec("x86_64"), launch);
  EXPECT_THAT(clone, HasSubstr("mem-path=/snap/t,,1/memory,share=off"));
  EXPECT_THAT(clone, HasSubstr(" -incoming defer"));
  // Without a file: anonymous RAM, no backend property.
  EXPECT_THAT(Line(Spec("x86_64")), Not(HasSubstr("memory-backend")));
}

// A comma in a path would end QEMU's option there (or add options of the
// user's choosing): every path in option syntax has its commas doubled.
TEST(QemuArgvTest, CommasInPathsAreEscaped) {
  VmSpec spec = Spec("x86_64");
  spec.add_disks()->set_path("/data/a,readonly=off,b.img");
  spec.add_nics()->set_tap("fc,x");
  Launch launch;
  launch.plan_file = "/run/x,y/plan.json";
  launch.qmp_socket = "/run/x,y/qmp.sock";
  launch.fw_cfg = {{"opt/a,b", "/f,g"}};
  const std::string line = Line(spec, launch);
  EXPECT_THAT(line, HasSubstr("file=/data/a,,readonly=off,,b.img,format=raw"));
  EXPECT_THAT(line, HasSubstr("ifname=fc,,x,script=no"));
  EXPECT_THAT(line, HasSubstr("name=opt/fcvm/plan,file=/run/x,,y/plan.json"));
  EXPECT_THAT(line, HasSubstr("name=opt/a,,b,file=/f,,g"));
  EXPECT_THAT(line, HasSubstr("unix:/run/x,,y/qmp.sock,server=on"));
  EXPECT_EQ(QemuOptValue("plain"), "plain");
  EXPECT_EQ(QemuOptValue(",,"), ",,,,");
}

TEST(QemuArgvTest, KvmUsesTheHostCpu) {
  Launch launch;
  launch.accel = "kvm";
  EXPECT_THAT(Line(Spec("x86_64"), launch), HasSubstr("-cpu host -accel kvm"));
  EXPECT_THAT(Line(Spec("aarch64"), launch), HasSubstr("-cpu host -accel kvm"));
}

TEST(QemuArgvTest, PlanInFwCfgQmpAndConsole) {
  Launch launch;
  launch.plan_file = "/v/plan.json";
  launch.qmp_socket = "/v/qmp.sock";
  launch.console = "file:/v/console.log";
  const std::string line = Line(Spec("x86_64"), launch);
  EXPECT_THAT(line, HasSubstr("-fw_cfg name=opt/fcvm/plan,file=/v/plan.json"));
  EXPECT_THAT(line, HasSubstr("qemu_fw_cfg.ioport=12@0x510:0:1:4"));
  EXPECT_THAT(line, HasSubstr("-qmp unix:/v/qmp.sock,server=on,wait=off"));
  EXPECT_THAT(line, HasSubstr("-serial file:/v/console.log"));
}

TEST(QemuArgvTest, Networks) {
  VmSpec spec = Spec("x86_64");
  Nic* tap = spec.add_nics();
  tap->set_tap("fcvm-web");
  tap->set_guest_mac("06:00:0a:d5:00:06");
  UserNet* user = spec.add_nics()->mutable_user();
  user->set_net("10.0.2.0/24");
  user->set_isolated(true);
  PublishedPort* port = user->add_forwards();
  port->set_host_port(8080);
  port->set_guest_port(80);
  user->set_guestfwd_address("169.254.169.254:80");
  user->set_guestfwd_command("/bin/bridge 127.0.0.1 9");
  spec.add_nics();  // Isolated.
  const std::string line = Line(spec);
  EXPECT_THAT(line, HasSubstr("-netdev tap,id=n0,ifname=fcvm-web,script=no,"
                              "downscript=no -device virtio-net-device,"
                              "netdev=n0,mac=06:00:0a:d5:00:06"));
  EXPECT_THAT(line,
              HasSubstr("-netdev user,id=n1,restrict=on,net=10.0.2.0/24,"
                        "hostfwd=tcp:127.0.0.1:8080-:80,guestfwd=tcp:"
                        "169.254.169.254:80-cmd:/bin/bridge 127.0.0.1 9"));
  EXPECT_THAT(line, HasSubstr("-netdev hubport,id=n2,hubid=2"));
}

TEST(QemuArgvTest, VsockAndInitrd) {
  VmSpec spec = Spec("aarch64");
  spec.set_vsock_cid(7);
  spec.set_initrd("/k/initrd");
  const std::string line = Line(spec);
  EXPECT_THAT(line, HasSubstr("-device vhost-vsock-device,guest-cid=7"));
  EXPECT_THAT(line, HasSubstr("-initrd /k/initrd"));
}

TEST(QemuArgvTest, TheAgentsChannelIsAVirtioSerialPortOnAChardevSocket) {
  Launch launch;
  launch.channel_socket = "/run/x,y/agent.sock";
  EXPECT_THAT(Line(Spec("x86_64"), launch),
              HasSubstr("-device virtio-serial-device,max_ports=2 -chardev "
                        "socket,id=channel,path=/run/x,,y/agent.sock,"
                        "server=on,wait=off -device virtserialport,"
                        "chardev=channel,name=org.fcvm.channel.0"));
  EXPECT_THAT(Line(Spec("x86_64")), Not(HasSubstr("virtio-serial")));
}

TEST(QemuArgvTest, ErrorsNameTheVm) {
  VmSpec spec = Spec("riscv64");
  EXPECT_THAT(QemuArgv(spec, {}).status().message(),
              HasSubstr("VM 'web': unknown architecture 'riscv64'"));
  spec = Spec("x86_64");
  spec.clear_kernel();
  EXPECT_THAT(QemuArgv(spec, {}).status().message(), HasSubstr("no kernel"));
  Launch launch;
  launch.accel = "hvf";
  EXPECT_THAT(QemuArgv(Spec("x86_64"), launch).status().message(),
              HasSubstr("accelerator 'hvf'"));
}

}  // namespace
}  // namespace fcvm::runner::qemu
