#include "runner/vm/launch.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char* NoEnv(const char*) { return nullptr; }

RunFlags Flags(std::vector<std::string> args) {
  absl::StatusOr<RunFlags> flags = ParseRunFlags(args, NoEnv);
  EXPECT_TRUE(flags.ok()) << flags.status();
  return flags.ok() ? *flags : RunFlags();
}

// A developer's x86_64 machine as root: QEMU, no Firecracker, KVM broken.
HostFacts Qemu() {
  HostFacts facts;
  facts.host_arch = facts.guest_arch = "x86_64";
  facts.euid = 0;
  facts.state_root = "/run/fcvm";
  facts.kernel = "/a/vmlinux";
  facts.rootfs = "/a/base.ext4";
  facts.qemu = true;
  facts.kvm_qemu = {false, "broken: QEMU under KVM: failed to set MSR"};
  facts.pasta = facts.slirp4netns = true;
  facts.nameservers = {"192.0.2.53"};
  return facts;
}

// The production host: aarch64, Firecracker and a working KVM, no QEMU.
HostFacts FirecrackerOnly() {
  HostFacts facts = Qemu();
  facts.host_arch = facts.guest_arch = "aarch64";
  facts.qemu = false;
  facts.kvm_qemu = {};
  facts.firecracker = "/usr/local/bin/firecracker";
  facts.kvm_firecracker = {true, "works: Firecracker booted the kernel"};
  return facts;
}

LaunchSeeds Seeds() {
  return {"0123456789abcdef", "3e09", std::string(32, 'c'),
          std::string(32, '\x5a'), 1700000000000};
}

TEST(PlanLaunchTest, AFirecrackerOnlyHostRunsFirecrackerOnATap) {
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"nginx"}), FirecrackerOnly(), Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const VmState& s = launch->state;
  EXPECT_EQ(s.backend(), "firecracker");
  EXPECT_EQ(s.accel(), "kvm");
  EXPECT_EQ(s.vmm_binary(), "/usr/local/bin/firecracker");
  EXPECT_EQ(s.network().mode(), "tap");
  EXPECT_EQ(s.spec().arch(), "aarch64");
  EXPECT_THAT(s.backend_reason(), HasSubstr("firecracker is installed"));
}

TEST(PlanLaunchTest, LabelsTimeoutAndRmAreKeptInTheState) {
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"--label", "k=v", "--timeout", "5", "--rm", "nginx"}),
                 FirecrackerOnly(), Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const VmState& s = launch->state;
  EXPECT_EQ(s.labels().at("k"), "v");
  EXPECT_EQ(s.expires_unix_ms(), Seeds().now_unix_ms + 5000);
  EXPECT_TRUE(s.remove_on_exit());
  launch = PlanLaunch(Flags({"nginx"}), FirecrackerOnly(), Seeds());
  EXPECT_EQ(launch->state.expires_unix_ms(), 0);
  EXPECT_FALSE(launch->state.remove_on_exit());
}

TEST(PlanLaunchTest, AutoFallsBackToQemuAndSaysWhy) {
  HostFacts facts = FirecrackerOnly();
  facts.qemu = true;
  facts.kvm_firecracker = {false, "broken: KVM internal error"};
  absl::StatusOr<Launch> launch = PlanLaunch(Flags({"nginx"}), facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->state.backend(), "qemu");
  EXPECT_EQ(launch->state.accel(), "tcg");
  EXPECT_EQ(launch->state.backend_reason(),
            "auto: firecracker: broken: KVM internal error");
  EXPECT_EQ(launch->state.network().mode(), "user");

  // A user without root or a rootless helper cannot give Firecracker a TAP.
  facts = FirecrackerOnly();
  facts.qemu = true;
  facts.euid = 1000;
  facts.pasta = facts.slirp4netns = false;
  launch = PlanLaunch(Flags({"nginx"}), facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->state.backend(), "qemu");
  EXPECT_THAT(launch->state.backend_reason(), HasSubstr("needs a TAP"));

  // With pasta, it can: rootless.
  facts.pasta = true;
  launch = PlanLaunch(Flags({"nginx"}), facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->state.backend(), "firecracker");
  EXPECT_EQ(launch->state.network().mode(), "pasta");
}

TEST(PlanLaunchTest, NoVmmAtAllNamesBoth) {
  HostFacts facts = FirecrackerOnly();
  facts.firecracker.clear();
  absl::StatusOr<Launch> launch = PlanLaunch(Flags({"nginx"}), facts, Seeds());
  ASSERT_FALSE(launch.ok());
  EXPECT_THAT(launch.status().message(),
              HasSubstr("auto: no firecracker in PATH; and there is no "
                        "qemu-system-aarch64 (Debian package "
                        "qemu-system-arm)"));
}

TEST(PlanLaunchTest, AcceleratorAsRequestedOrAsTheProbeSaid) {
  HostFacts facts = Qemu();
  EXPECT_EQ(
      PlanLaunch(Flags({"--accel", "kvm", "x"}), facts, Seeds())->state.accel(),
      "kvm");
  facts.kvm_qemu = {true, "works: QEMU booted the kernel"};
  absl::StatusOr<Launch> launch = PlanLaunch(Flags({"x"}), facts, Seeds());
  EXPECT_EQ(launch->state.accel(), "kvm");
  EXPECT_EQ(launch->state.accel_reason(), "works: QEMU booted the kernel");
  EXPECT_EQ(
      PlanLaunch(Flags({"--accel", "tcg", "x"}), facts, Seeds())->state.accel(),
      "tcg");
}

TEST(PlanLaunchTest, RefusalsComeBeforeAnythingExists) {
  HostFacts facts = FirecrackerOnly();
  EXPECT_THAT(
      PlanLaunch(Flags({"--backend", "firecracker", "--network", "user", "x"}),
                 facts, Seeds())
          .status()
          .message(),
      HasSubstr("no user-mode network of its own"));
  EXPECT_THAT(PlanLaunch(Flags({"--network", "user", "x"}), facts, Seeds())
                  .status()
                  .message(),
              HasSubstr("auto: --network user is QEMU's; and there is no "
                        "qemu-system-aarch64"));
  facts.euid = 1000;
  EXPECT_THAT(PlanLaunch(Flags({"--network", "tap", "x"}), facts, Seeds())
                  .status()
                  .message(),
              HasSubstr("it needs root"));
  facts.firecracker.clear();
  EXPECT_THAT(
      PlanLaunch(Flags({"--backend", "firecracker", "x"}), facts, Seeds())
          .status()
          .message(),
      HasSubstr("no firecracker in PATH"));
  facts = FirecrackerOnly();
  facts.kvm_firecracker = {
      false, "/dev/kvm: no permission (join the kvm group, or run as root)"};
  EXPECT_THAT(
      PlanLaunch(Flags({"--backend", "firecracker", "x"}), facts, Seeds())
          .status()
          .message(),
      HasSubstr("needs KVM that runs a guest; /dev/kvm: no permission"));
  facts = Qemu();
  facts.pasta = false;
  EXPECT_THAT(PlanLaunch(Flags({"--network", "pasta", "x"}), facts, Seeds())
                  .status()
                  .message(),
              HasSubstr("Debian package passt"));
}

// A name the guest would refuse as its hostname used to boot for minutes
// under TCG and then fail in the agent; now it fails here.
TEST(PlanLaunchTest, NamesAreHostnamesCheckedOnTheHost) {
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"--name", "my_vm", "nginx"}), Qemu(), Seeds());
  EXPECT_EQ(launch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(launch.status().message(), HasSubstr("bad VM name 'my_vm'"));
  EXPECT_THAT(PlanLaunch(Flags({"--name", "web-", "x"}), Qemu(), Seeds())
                  .status()
                  .message(),
              HasSubstr("bad VM name 'web-'"));
  // An image's name becomes a valid one.
  launch = PlanLaunch(Flags({"registry.example/team/my_app.v2:1.0"}), Qemu(),
                      Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->state.name(), "my-app-v2-3e09");
  EXPECT_EQ(launch->state.spec().plan().hostname(), "my-app-v2-3e09");
  EXPECT_EQ(NameFromImage("___", "ab"), "vm-ab");
  EXPECT_EQ(NameFromImage("/srv/images/web_.tar", "ab"), "web-ab");
}

TEST(PlanLaunchTest, DrivesAreNamedByTheBackendAndThePlanUsesThem) {
  HostFacts facts = Qemu();
  facts.image_archive = "/a/nginx.tar";
  facts.volumes["/data/db.img"] = {VolumeKind::kFile, ""};
  facts.volumes["/srv/www"] = {VolumeKind::kDirectory, ""};
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"--name", "web", "-v", "/data/db.img:/db", "-v",
                        "/srv/www:/www:ro", "nginx"}),
                 facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const VmSpec& spec = launch->state.spec();
  ASSERT_EQ(spec.disks_size(), 5);
  EXPECT_EQ(spec.boot_args(),
            "root=/dev/vda ro rootfstype=ext4 init=/sbin/fcvm-init quiet");
  EXPECT_EQ(spec.disks(1).path(), "/run/fcvm/vms/web/disk.img");
  EXPECT_EQ(spec.disks(2).path(), "/a/nginx.tar");
  EXPECT_EQ(spec.plan().image(), "oci-archive:/dev/vdc");
  EXPECT_EQ(spec.disks(3).path(), "/data/db.img");
  EXPECT_FALSE(spec.disks(3).read_only());
  EXPECT_EQ(spec.disks(4).path(), "/run/fcvm/vms/web/volume-1.ext4");
  EXPECT_TRUE(spec.disks(4).read_only());
  ASSERT_EQ(spec.plan().volumes_size(), 2);
  EXPECT_EQ(spec.plan().volumes(0).block_device(), "/dev/vdd");
  EXPECT_EQ(spec.plan().volumes(1).block_device(), "/dev/vde");
  ASSERT_EQ(launch->volumes.size(), 2u);
  EXPECT_EQ(launch->volumes[1].kind, VolumeKind::kDirectory);
  EXPECT_EQ(launch->volumes[1].disk, 4);
  EXPECT_THAT(launch->state.volumes(),
              ElementsAre("/data/db.img -> /db (disk image, /dev/vdd)",
                          "/srv/www -> /www (copy of a directory, /dev/vde, "
                          "read-only)"));
}

TEST(PlanLaunchTest, VolumesTheHostCannotGiveAreRefused) {
  HostFacts facts = Qemu();
  facts.volumes["/srv/www"] = {VolumeKind::kDirectory, ""};
  facts.volumes["/nope"] = {VolumeKind::kMissing, "No such file or directory"};
  EXPECT_THAT(PlanLaunch(Flags({"-v", "/srv/www:/www", "x"}), facts, Seeds())
                  .status()
                  .message(),
              HasSubstr("mount it :ro"));
  absl::Status missing =
      PlanLaunch(Flags({"-v", "/nope:/x", "x"}), facts, Seeds()).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "volume /nope:/x: No such file or directory");
}

TEST(PlanLaunchTest, ALocalImagesPortsArePublishedOnFreePorts) {
  HostFacts facts = Qemu();
  facts.image_archive = "/a/busybox-httpd.tar";
  PublishedPort exposed;
  exposed.set_guest_port(8080);
  exposed.set_protocol("tcp");
  facts.exposed_ports = {exposed};
  facts.free_host_ports[8080] = 8080;
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"busybox-httpd"}), facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  ASSERT_EQ(launch->state.ports_size(), 1);
  EXPECT_EQ(launch->state.ports(0).host_port(), 8080u);
  const UserNet& user = launch->state.spec().nics(0).user();
  ASSERT_EQ(user.forwards_size(), 1);
  EXPECT_EQ(user.forwards(0).host_port(), 8080u);
  EXPECT_EQ(launch->state.spec().plan().ports(0).guest_port(), 8080u);
  EXPECT_EQ(launch->state.spec().plan().network().ip_cidr(), "10.0.2.15/24");
  // The user's own -p wins; with --network none nothing is published.
  EXPECT_EQ(PlanLaunch(Flags({"-p", "9000:8080", "x"}), facts, Seeds())
                ->state.ports(0)
                .host_port(),
            9000u);
  EXPECT_EQ(PlanLaunch(Flags({"--network", "none", "x"}), facts, Seeds())
                ->state.ports_size(),
            0);
  facts.free_host_ports.clear();
  EXPECT_THAT(PlanLaunch(Flags({"x"}), facts, Seeds()).status().message(),
              HasSubstr("no free port on 127.0.0.1"));
}

// nginx as the pipeline bakes it: the config of its OCI archive.
HostFacts BakedNginx() {
  HostFacts facts = Qemu();
  facts.image_rootfs = "/a/nginx_rootfs.ext4";
  rootfs::oci::ContainerConfig& config = facts.image_config;
  config.add_entrypoint("/docker-entrypoint.sh");
  config.add_cmd("nginx");
  config.add_cmd("-g");
  config.add_cmd("daemon off;");
  config.add_env("PATH=/usr/sbin:/usr/bin");
  config.set_user("www-data");
  config.set_working_dir("/var/www");
  config.set_stop_signal("SIGQUIT");
  (*config.mutable_exposed_ports())["80/tcp"];
  PublishedPort exposed;
  exposed.set_guest_port(80);
  exposed.set_protocol("tcp");
  facts.exposed_ports = {exposed};
  facts.free_host_ports[80] = 40080;
  return facts;
}

TEST(PlanLaunchTest, ABakedRootfsIsAReadOnlyDriveWithTheImagesConfig) {
  HostFacts facts = BakedNginx();
  facts.volumes["/data/db.img"] = {VolumeKind::kFile, ""};
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"--name", "web", "-v", "/data/db.img:/db", "nginx"}),
                 facts, Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const VmSpec& spec = launch->state.spec();
  // base, writable disk, the baked rootfs (no archive), the volume.
  ASSERT_EQ(spec.disks_size(), 4);
  EXPECT_EQ(spec.disks(2).path(), "/a/nginx_rootfs.ext4");
  EXPECT_TRUE(spec.disks(2).read_only());
  EXPECT_EQ(spec.disks(2).guest_device(), "/dev/vdc");
  EXPECT_EQ(spec.disks(3).path(), "/data/db.img");
  const agent::Plan& plan = spec.plan();
  EXPECT_EQ(plan.image(), "rootfs:/dev/vdc");
  EXPECT_EQ(plan.volumes(0).block_device(), "/dev/vdd");
  const agent::RootfsImage& baked = plan.rootfs();
  EXPECT_EQ(baked.device(), "/dev/vdc");
  EXPECT_THAT(baked.entrypoint(), ElementsAre("/docker-entrypoint.sh"));
  EXPECT_THAT(baked.cmd(), ElementsAre("nginx", "-g", "daemon off;"));
  EXPECT_THAT(baked.env(), ElementsAre("PATH=/usr/sbin:/usr/bin"));
  EXPECT_EQ(baked.user(), "www-data");
  EXPECT_EQ(baked.working_dir(), "/var/www");
  EXPECT_EQ(baked.stop_signal(), "SIGQUIT");
  // The user's flags stay the plan's own (the agent applies them over the
  // image's config, as Podman would); none were given.
  EXPECT_TRUE(plan.command().empty());
  EXPECT_TRUE(plan.args().empty());
  EXPECT_TRUE(plan.env().empty());
  EXPECT_EQ(plan.user(), "");
  EXPECT_EQ(launch->state.image(), "nginx");
  // The exposed port is published, as with the archive.
  ASSERT_EQ(launch->state.ports_size(), 1);
  EXPECT_EQ(launch->state.ports(0).guest_port(), 80u);
  EXPECT_EQ(launch->state.ports(0).host_port(), 40080u);
  ASSERT_EQ(plan.ports_size(), 1);
  EXPECT_EQ(plan.ports(0).guest_port(), 80u);
}

TEST(PlanLaunchTest, ABakedRootfsKeepsTheUsersOverrides) {
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"--entrypoint", "/bin/sh", "-e", "A=1", "-u", "0", "-w",
                        "/tmp", "-p", "9000:80", "nginx", "-c", "id"}),
                 BakedNginx(), Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const agent::Plan& plan = launch->state.spec().plan();
  EXPECT_EQ(plan.image(), "rootfs:/dev/vdc");
  EXPECT_THAT(plan.command(), ElementsAre("/bin/sh"));
  EXPECT_THAT(plan.args(), ElementsAre("-c", "id"));
  EXPECT_EQ(plan.env().at("A"), "1");
  EXPECT_EQ(plan.user(), "0");
  EXPECT_EQ(plan.working_dir(), "/tmp");
  EXPECT_EQ(plan.rootfs().user(), "www-data");
  ASSERT_EQ(launch->state.ports_size(), 1);
  EXPECT_EQ(launch->state.ports(0).host_port(), 9000u);
}

TEST(PlanLaunchTest, TheRunsIdentityComesFromItsSeeds) {
  absl::StatusOr<Launch> launch =
      PlanLaunch(Flags({"-e", "A=1", "--cpus", "2", "x"}), Qemu(), Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  const agent::Plan& plan = launch->state.spec().plan();
  EXPECT_EQ(launch->state.id(), "0123456789abcdef");
  EXPECT_EQ(plan.machine_id(), std::string(32, 'c'));
  EXPECT_EQ(plan.entropy(), std::string(32, '\x5a'));
  EXPECT_EQ(plan.host_time_unix_ms(), 1700000000000u);
  EXPECT_EQ(plan.generation(), 1u);
  EXPECT_EQ(plan.env().at("A"), "1");
  EXPECT_EQ(launch->state.spec().vcpus(), 2u);
  LaunchSeeds short_seeds = Seeds();
  short_seeds.entropy.clear();
  EXPECT_EQ(PlanLaunch(Flags({"x"}), Qemu(), short_seeds).status().code(),
            absl::StatusCode::kInternal);
}

TEST(PlanLaunchTest, ATapNetworkGetsItsSubnetAfterwards) {
  absl::StatusOr<Launch> launch = PlanLaunch(
      Flags({"--network", "tap", "-p", "8080:80", "x"}), Qemu(), Seeds());
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->state.spec().nics_size(), 0);
  absl::StatusOr<Subnet> subnet = ParseSubnet("10.213.0.4/30");
  ASSERT_TRUE(subnet.ok());
  ASSERT_TRUE(ApplySubnet(*subnet, *launch).ok());
  const VmState& s = launch->state;
  EXPECT_EQ(s.network().tap(), "fc-01234567");
  EXPECT_EQ(s.network().nft_table(), "fcvm-0123456789abcdef");
  EXPECT_EQ(s.network().guest_ip(), "10.213.0.6");
  EXPECT_EQ(s.spec().nics(0).tap(), "fc-01234567");
  EXPECT_EQ(s.spec().plan().network().ip_cidr(), "10.213.0.6/30");
  EXPECT_EQ(s.spec().plan().network().gateway(), "10.213.0.5");
  EXPECT_THAT(s.spec().plan().network().dns(), ElementsAre("192.0.2.53"));
  // slirp4netns answers DNS itself.
  launch =
      PlanLaunch(Flags({"--network", "slirp4netns", "x"}), Qemu(), Seeds());
  ASSERT_TRUE(launch.ok());
  ASSERT_TRUE(ApplySubnet(*subnet, *launch).ok());
  EXPECT_THAT(launch->state.spec().plan().network().dns(),
              ElementsAre("10.0.2.3"));
}

}  // namespace
}  // namespace fcvm::runner
