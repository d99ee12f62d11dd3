#include "runner/snapshot/machine.h"

#include <cstdlib>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

SnapshotManifest Manifest() {
  SnapshotManifest m;
  m.set_tag("t1");
  m.set_backend("qemu");
  m.set_vmm_binary("qemu-system-x86_64");
  m.set_vmm_version("QEMU emulator version 7.2.22");
  m.set_accel("tcg");
  m.set_arch("x86_64");
  m.set_vcpus(1);
  m.set_memory_mib(512);
  VmState& source = *m.mutable_source();
  source.set_backend("qemu");
  source.set_accel("tcg");
  VmSpec& spec = *source.mutable_spec();
  spec.set_arch("x86_64");
  spec.set_vcpus(1);
  spec.set_memory_mib(512);
  spec.add_disks()->set_read_only(true);
  spec.mutable_disks(0)->set_guest_device("/dev/vda");
  spec.add_disks()->set_guest_device("/dev/vdb");
  spec.add_nics()->mutable_user();
  const MachineDescription machine = DescribeMachine(source);
  m.set_machine(machine.machine);
  m.set_cpu_model(machine.cpu_model);
  for (const std::string& d : machine.devices) m.add_devices(d);
  InputFile& rootfs = *m.add_inputs();
  rootfs.set_role("rootfs");
  rootfs.set_path("/b/base.ext4");
  rootfs.set_sha256("aa");
  HeldFile& state = *m.add_files();
  state.set_name("vmstate");
  state.set_size(57710);
  HeldFile& memory = *m.add_files();
  memory.set_name("memory");
  memory.set_size(uint64_t{512} << 20);
  return m;
}

HostNow Matching(const SnapshotManifest& m) {
  HostNow now;
  now.host_arch = "x86_64";
  now.vmm_version = m.vmm_version();
  for (const InputFile& input : m.inputs()) now.inputs.push_back(input);
  for (const HeldFile& file : m.files()) now.files.push_back(file);
  return now;
}

TEST(MachineTest, DescribesTheMachineAndItsDevicesInOrder) {
  const MachineDescription d = DescribeMachine(Manifest().source());
  EXPECT_EQ(d.machine, "microvm");
  EXPECT_EQ(d.cpu_model, "qemu64");
  EXPECT_EQ(d.devices,
            (std::vector<std::string>{
                "serial console", "virtio-rng", "virtio-blk /dev/vda read-only",
                "virtio-blk /dev/vdb read-write", "virtio-net eth0 user"}));
  VmState arm = Manifest().source();
  arm.mutable_spec()->set_arch("aarch64");
  EXPECT_EQ(DescribeMachine(arm).cpu_model, "cortex-a57");
  arm.set_accel("kvm");
  EXPECT_EQ(DescribeMachine(arm).cpu_model, "host");
}

TEST(MachineTest, AMatchingHostIsAccepted) {
  const SnapshotManifest m = Manifest();
  EXPECT_TRUE(CheckRestorable(m, Matching(m)).ok());
}

// Each kind of difference names the snapshot, the field and both values.
TEST(MachineTest, EachDifferenceIsNamedWithBothValues) {
  const SnapshotManifest m = Manifest();
  auto refused = [&](HostNow now, SnapshotManifest manifest) {
    absl::Status status = CheckRestorable(manifest, now);
    EXPECT_FALSE(status.ok());
    return std::string(status.message());
  };
  HostNow now = Matching(m);
  now.vmm_version = "QEMU emulator version 8.2.0";
  EXPECT_EQ(refused(now, m),
            "snapshot 't1': vmm_version: expected 'QEMU emulator version "
            "7.2.22', found 'QEMU emulator version 8.2.0'");
  now = Matching(m);
  now.vmm_version.clear();
  now.vmm_error = "start 'qemu-system-x86_64': No such file or directory";
  EXPECT_THAT(refused(now, m), HasSubstr("its VMM cannot run here (start"));

  SnapshotManifest kvm = m;
  kvm.set_accel("kvm");
  now = Matching(m);
  now.host_arch = "aarch64";
  EXPECT_THAT(refused(now, kvm),
              HasSubstr("expected 'x86_64', found 'aarch64'"));

  SnapshotManifest other = m;
  other.set_machine("pc");
  EXPECT_THAT(refused(Matching(m), other),
              HasSubstr("machine: expected 'pc', found 'microvm'"));
  other = m;
  other.add_devices("vsock");
  EXPECT_THAT(refused(Matching(m), other), HasSubstr("devices: expected"));
  other = m;
  other.set_memory_mib(256);
  EXPECT_THAT(refused(Matching(m), other),
              HasSubstr("memory_mib (the manifest's against its VM spec): "
                        "expected '256', found '512'"));

  now = Matching(m);
  now.inputs[0]->set_sha256("bb");
  EXPECT_THAT(refused(now, m),
              HasSubstr("inputs[rootfs] /b/base.ext4 sha256 (rebuilt since "
                        "the snapshot?): expected 'aa', found 'bb'"));
  now = Matching(m);
  now.inputs[0] = absl::NotFoundError("the rootfs /b/base.ext4: gone");
  EXPECT_THAT(refused(now, m), HasSubstr("inputs[rootfs]: the rootfs"));

  now = Matching(m);
  now.files[0]->set_size(5);
  EXPECT_EQ(refused(now, m),
            "snapshot 't1': its vmstate file is 5 bytes, the manifest says "
            "57710 (truncated or replaced: the snapshot is damaged)");
  now = Matching(m);
  now.files[1] = absl::NotFoundError("/s/memory: No such file");
  EXPECT_THAT(refused(now, m), HasSubstr("its memory file: /s/memory"));
}

// An input whose stat changed is hashed again: the same bytes pass.
TEST(MachineTest, AnInputRewrittenWithTheSameBytesStillMatches) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  const std::string path = dir + "/kernel";
  ASSERT_TRUE(WriteFileAtomically(path, "vmlinux bytes").ok());
  absl::StatusOr<InputFile> before = DescribeInput("kernel", path);
  ASSERT_TRUE(before.ok()) << before.status();
  SnapshotManifest m;
  *m.add_inputs() = *before;
  m.mutable_inputs(0)->set_mtime_ns(1);  // As if rebuilt since.
  HostNow now = ObserveHost(m, dir);
  ASSERT_EQ(now.inputs.size(), 1u);
  ASSERT_TRUE(now.inputs[0].ok());
  EXPECT_EQ(now.inputs[0]->sha256(), before->sha256());
  ASSERT_TRUE(WriteFileAtomically(path, "other bytes").ok());
  now = ObserveHost(m, dir);
  EXPECT_NE(now.inputs[0]->sha256(), before->sha256());
}

// Another snapshot's hash of the same unchanged file is taken as is; a
// file whose stat differs is hashed again.
TEST(MachineTest, AnotherSnapshotsHashOfAnUnchangedInputIsReused) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/rootfs";
  ASSERT_TRUE(WriteFileAtomically(path, "ext4 bytes").ok());
  absl::StatusOr<InputFile> first = DescribeInput("rootfs", path);
  ASSERT_TRUE(first.ok()) << first.status();
  InputFile known = *first;
  known.set_sha256("recorded");
  absl::StatusOr<InputFile> again = DescribeInput("rootfs", path, {known});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sha256(), "recorded");
  known.set_mtime_ns(known.mtime_ns() + 1);
  again = DescribeInput("rootfs", path, {known});
  EXPECT_EQ(again->sha256(), first->sha256());
}

}  // namespace
}  // namespace fcvm::runner
