#include "runner/cache/key.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

// A planned VM as PlanLaunch makes one: an archive image, user network.
VmState Planned() {
  VmState state;
  state.set_name("nginx-1a2b");
  state.set_id("0123456789abcdef");
  state.set_backend("qemu");
  state.set_accel("tcg");
  state.set_vmm_binary("qemu-system-x86_64");
  state.set_image("nginx");
  state.mutable_network()->set_mode("user");
  PublishedPort* port = state.add_ports();
  port->set_host_port(34567);
  port->set_guest_port(80);
  port->set_protocol("tcp");
  VmSpec& spec = *state.mutable_spec();
  spec.set_name("nginx-1a2b");
  spec.set_arch("x86_64");
  spec.set_kernel("/k/vmlinux");
  spec.set_vcpus(1);
  spec.set_memory_mib(512);
  spec.set_channel("virtio-serial");
  Disk* root = spec.add_disks();
  root->set_path("/k/base.ext4");
  root->set_read_only(true);
  root->set_guest_device("/dev/vda");
  Disk* disk = spec.add_disks();
  disk->set_path("/state/vms/nginx-1a2b/disk.img");
  disk->set_guest_device("/dev/vdb");
  Disk* archive = spec.add_disks();
  archive->set_path("/k/nginx.tar");
  archive->set_read_only(true);
  archive->set_guest_device("/dev/vdc");
  Nic* nic = spec.add_nics();
  nic->set_guest_mac("06:00:0a:00:02:0f");
  nic->mutable_user()->set_net("10.0.2.0/24");
  *nic->mutable_user()->add_forwards() = *port;
  agent::Plan& plan = *spec.mutable_plan();
  plan.set_image("oci-archive:/dev/vdc");
  plan.set_hostname("nginx-1a2b");
  plan.set_machine_id("00112233445566778899aabbccddeeff");
  plan.set_entropy("random bytes");
  plan.set_host_time_unix_ms(1700000000000);
  plan.set_generation(1);
  agent::PortMapping* mapping = plan.add_ports();
  mapping->set_host_port(34567);
  mapping->set_guest_port(80);
  return state;
}

absl::StatusOr<std::string> FakeDigest(const std::string&,
                                       const std::string& path) {
  return "sha-of-" + path;
}

std::string KeyOf(const VmState& state, const std::string& version = "7.2") {
  absl::StatusOr<CacheKey> key = ComputeCacheKey(state, version, FakeDigest);
  EXPECT_TRUE(key.ok()) << key.status();
  return key.ok() ? key->key() : "";
}

TEST(CacheKeyTest, IsStableAndIgnoresTheRunsOwnIdentity) {
  const VmState a = Planned();
  EXPECT_EQ(KeyOf(a).size(), 32u);
  EXPECT_EQ(KeyOf(a), KeyOf(a));
  VmState b = a;
  b.set_name("nginx-ffff");
  b.set_id("fedcba9876543210");
  b.mutable_ports(0)->set_host_port(40000);
  agent::Plan& plan = *b.mutable_spec()->mutable_plan();
  plan.set_hostname("nginx-ffff");
  plan.set_machine_id("ffeeddccbbaa99887766554433221100");
  plan.set_entropy("other bytes");
  plan.set_host_time_unix_ms(1800000000000);
  plan.mutable_ports(0)->set_host_port(40000);
  b.mutable_spec()->mutable_disks(1)->set_path("/state/vms/nginx-ffff/d.img");
  b.mutable_spec()->mutable_nics(0)->set_guest_mac("06:00:0a:00:02:10");
  EXPECT_EQ(KeyOf(a), KeyOf(b));
}

TEST(CacheKeyTest, EveryInputThatShapesTheGuestChangesIt) {
  const std::string base = KeyOf(Planned());
  auto differs = [&](const std::function<void(VmState&)>& change) {
    VmState state = Planned();
    change(state);
    return KeyOf(state) != base;
  };
  EXPECT_TRUE(differs([](VmState& s) {
    (*s.mutable_spec()->mutable_plan()->mutable_env())["A"] = "1";
  }));
  EXPECT_TRUE(differs(
      [](VmState& s) { s.mutable_spec()->mutable_plan()->add_args("-v"); }));
  EXPECT_TRUE(differs([](VmState& s) {
    s.mutable_spec()->mutable_plan()->add_command("/bin/sh");
  }));
  EXPECT_TRUE(differs(
      [](VmState& s) { s.mutable_spec()->mutable_plan()->set_user("1000"); }));
  EXPECT_TRUE(differs([](VmState& s) {
    s.mutable_spec()->mutable_plan()->set_working_dir("/srv");
  }));
  EXPECT_TRUE(differs([](VmState& s) {
    s.mutable_spec()->mutable_plan()->mutable_ports(0)->set_guest_port(8080);
  }));
  EXPECT_TRUE(differs([](VmState& s) { s.mutable_spec()->set_vcpus(2); }));
  EXPECT_TRUE(
      differs([](VmState& s) { s.mutable_spec()->set_memory_mib(1024); }));
  EXPECT_TRUE(differs([](VmState& s) { s.set_accel("kvm"); }));
  EXPECT_TRUE(
      differs([](VmState& s) { s.mutable_network()->set_mode("tap"); }));
  EXPECT_TRUE(differs(
      [](VmState& s) { s.mutable_spec()->set_kernel("/other/vmlinux"); }));
  EXPECT_TRUE(differs([](VmState& s) {
    s.mutable_spec()->mutable_disks(2)->set_path("/k/other.tar");
  }));
  VmState state = Planned();
  EXPECT_NE(KeyOf(state, "7.2"), KeyOf(state, "8.0"));
}

TEST(CacheKeyTest, EnvOrderDoesNotMatterButSplittingWordsDoes) {
  VmState a = Planned(), b = Planned();
  auto& ea = *a.mutable_spec()->mutable_plan()->mutable_env();
  ea["A"] = "1";
  ea["B"] = "2";
  auto& eb = *b.mutable_spec()->mutable_plan()->mutable_env();
  eb["B"] = "2";
  eb["A"] = "1";
  EXPECT_EQ(KeyOf(a), KeyOf(b));
  VmState one = Planned(), two = Planned();
  one.mutable_spec()->mutable_plan()->add_args("a b");
  two.mutable_spec()->mutable_plan()->add_args("a");
  two.mutable_spec()->mutable_plan()->add_args("b");
  EXPECT_NE(KeyOf(one), KeyOf(two));
}

TEST(CacheKeyTest, RecordsItsParts) {
  absl::StatusOr<CacheKey> key =
      ComputeCacheKey(Planned(), "QEMU 7.2", FakeDigest);
  ASSERT_TRUE(key.ok()) << key.status();
  std::map<std::string, std::string> parts;
  for (const CacheKeyPart& part : key->parts())
    parts[part.name()] = part.value();
  EXPECT_EQ(parts["vmm_version"], "QEMU 7.2");
  EXPECT_EQ(parts["rootfs"], "sha-of-/k/base.ext4");
  EXPECT_EQ(parts["drive /dev/vdc"], "sha-of-/k/nginx.tar");
  EXPECT_EQ(parts["guest_ports"], "80/tcp");
  EXPECT_EQ(parts.count("drive /dev/vdb"), 0u);  // The writable disk.
}

TEST(CacheKeyTest, RegistryTagsAndVolumesAreNotCacheable) {
  VmState registry = Planned();
  registry.set_image("nginx:1.27");
  registry.mutable_spec()->mutable_plan()->set_image("nginx:1.27");
  absl::StatusOr<CacheKey> key = ComputeCacheKey(registry, "7.2", FakeDigest);
  EXPECT_TRUE(absl::IsFailedPrecondition(key.status()));
  EXPECT_THAT(key.status().message(), HasSubstr("registry"));

  VmState pinned = registry;
  pinned.mutable_spec()->mutable_plan()->set_image("nginx@sha256:abcd");
  EXPECT_TRUE(ComputeCacheKey(pinned, "7.2", FakeDigest).ok());

  VmState volumes = Planned();
  volumes.add_volumes("/data -> /data (ext4 copy, /dev/vdd)");
  key = ComputeCacheKey(volumes, "7.2", FakeDigest);
  EXPECT_THAT(key.status().message(), HasSubstr("volumes"));
}

TEST(CacheKeyTest, ADigestFailureIsTheError) {
  absl::StatusOr<CacheKey> key = ComputeCacheKey(
      Planned(), "7.2", [](const std::string& role, const std::string& path) {
        return absl::StatusOr<std::string>(
            absl::NotFoundError("the " + role + " " + path + ": missing"));
      });
  EXPECT_THAT(key.status().message(), HasSubstr("the kernel /k/vmlinux"));
}

}  // namespace
}  // namespace fcvm::runner
