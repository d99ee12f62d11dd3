#include "runner/snapshot/clone.h"

#include <set>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

SnapshotManifest Manifest() {
  SnapshotManifest m;
  m.set_tag("t1");
  m.set_generation(1);
  VmState& s = *m.mutable_source();
  s.set_name("web");
  s.set_id("00112233445566aa");
  s.set_backend("qemu");
  s.set_phase(VmState::RUNNING);
  s.set_vmm_pid(42);
  s.set_disk("/run/fcvm/vms/web/disk.img");
  s.mutable_network()->set_mode("user");
  PublishedPort* port = s.add_ports();
  port->set_host_port(8080);
  port->set_guest_port(8080);
  port->set_protocol("tcp");
  VmSpec& spec = *s.mutable_spec();
  spec.set_name("web");
  spec.add_disks()->set_path("/b/base.ext4");
  spec.add_disks()->set_path("/run/fcvm/vms/web/disk.img");
  *spec.add_nics()->mutable_user()->add_forwards() = *port;
  agent::Plan& plan = *spec.mutable_plan();
  plan.set_image("oci-archive:/dev/vdc");
  plan.set_hostname("web");
  plan.set_generation(1);
  plan.set_machine_id(std::string(32, 'a'));
  plan.set_entropy(std::string(32, 'e'));
  return m;
}

LaunchSeeds Seed(char c) {
  return {std::string(16, c), "abcd", std::string(32, c), std::string(32, c),
          1795000000000};
}

TEST(CloneTest, EachCloneIsItsOwnMachine) {
  CloneRequest request;
  request.tag = "t1";
  request.count = 2;
  request.detach = true;
  const SnapshotManifest m = Manifest();
  std::vector<std::vector<PublishedPort>> ports = {ClonePorts(m, request, 0),
                                                   ClonePorts(m, request, 1)};
  ASSERT_EQ(ports[0].size(), 1u);
  EXPECT_EQ(ports[0][0].host_port(), 0u);  // A free one, chosen by the caller.
  ports[0][0].set_host_port(40001);
  ports[1][0].set_host_port(40002);
  absl::StatusOr<std::vector<Launch>> launches = PlanClones(
      m, "/s/t1", request, "/run/fcvm", {Seed('1'), Seed('2')}, ports);
  ASSERT_TRUE(launches.ok()) << launches.status();
  ASSERT_EQ(launches->size(), 2u);
  std::set<std::string> ids, machine_ids;
  for (int i = 0; i < 2; ++i) {
    const Launch& l = (*launches)[i];
    const VmState& s = l.state;
    const std::string name = absl::StrCat("t1-", i + 1);
    EXPECT_EQ(s.name(), name);
    EXPECT_EQ(s.phase(), VmState::CREATING);
    EXPECT_EQ(s.vmm_pid(), 0);
    EXPECT_EQ(s.disk(), absl::StrCat("/run/fcvm/vms/", name, "/disk.img"));
    // Its own disk, a copy of the snapshot's; never the original's.
    EXPECT_EQ(s.spec().disks(1).path(), s.disk());
    EXPECT_EQ(s.spec().disks(0).path(), "/b/base.ext4");
    EXPECT_EQ(l.disk_template, "/s/t1/disk");
    ASSERT_TRUE(l.restore.has_value());
    EXPECT_EQ(l.restore->snapshot_dir, "/s/t1");
    EXPECT_EQ(s.restored_from().snapshot(), "t1");
    EXPECT_EQ(s.ports(0).host_port(), 40001u + i);
    EXPECT_EQ(s.spec().nics(0).user().forwards(0).host_port(), 40001u + i);
    const agent::Plan& plan = s.spec().plan();
    EXPECT_EQ(plan.hostname(), name);
    EXPECT_EQ(plan.generation(), 2u);
    EXPECT_EQ(plan.ports(0).host_port(), 40001u + i);
    ids.insert(s.id());
    machine_ids.insert(plan.machine_id());
  }
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(machine_ids.size(), 2u);
}

// A TAP clone gets a network of its own: the subnet, TAP and addresses
// come from CreateVm (ApplySubnet), so none of the source's is kept; the
// guest learns its new address when it re-identifies.
TEST(CloneTest, ATapCloneLeavesItsNetworkToBeAssigned) {
  SnapshotManifest m = Manifest();
  VmState& s = *m.mutable_source();
  NetworkState& net = *s.mutable_network();
  net.set_mode("tap");
  net.set_tap("fc00112233445566");
  net.set_subnet("10.213.0.4/30");
  net.set_guest_ip("10.213.0.6");
  net.add_dns("10.213.0.5");
  s.mutable_spec()->clear_nics();
  s.mutable_spec()->add_nics()->set_tap("fc00112233445566");
  s.mutable_spec()->mutable_plan()->mutable_network()->set_ip_cidr(
      "10.213.0.6/30");
  CloneRequest request;
  request.count = 1;
  std::vector<std::vector<PublishedPort>> ports = {ClonePorts(m, request, 0)};
  ports[0][0].set_host_port(40001);
  absl::StatusOr<std::vector<Launch>> l =
      PlanClones(m, "/s", request, "/r", {Seed('1')}, ports);
  ASSERT_TRUE(l.ok()) << l.status();
  const VmState& clone = (*l)[0].state;
  EXPECT_EQ(clone.network().mode(), "tap");
  EXPECT_TRUE(clone.network().tap().empty());
  EXPECT_TRUE(clone.network().subnet().empty());
  EXPECT_EQ(clone.network().dns(0), "10.213.0.5");
  EXPECT_EQ(clone.spec().nics_size(), 0);
  EXPECT_FALSE(clone.spec().plan().has_network());
}

// Under QEMU the guest's fw_cfg keeps the size of the plan it booted with:
// a clone whose plan would pad to another size is refused, saying why.
TEST(CloneTest, APlanThatOutgrowsItsSnapshotsBlockIsRefused) {
  auto size = [](const agent::Plan& plan) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(plan, &json);
    return json.size();
  };
  SnapshotManifest m = Manifest();
  agent::Plan& plan = *m.mutable_source()->mutable_spec()->mutable_plan();
  CloneRequest request;
  request.count = 1;
  std::vector<std::vector<PublishedPort>> ports = {ClonePorts(m, request, 0)};
  ports[0][0].set_host_port(40001);
  // How much a default clone's plan adds to its source's (name, ports).
  absl::StatusOr<std::vector<Launch>> l =
      PlanClones(m, "/s", request, "/r", {Seed('1')}, ports);
  ASSERT_TRUE(l.ok()) << l.status();
  const size_t added = size((*l)[0].state.spec().plan()) - size(plan);
  // The source's plan padded so that a default clone's just fits its block.
  (*plan.mutable_env())["PAD"] = "";
  (*plan.mutable_env())["PAD"] = std::string(4095 - added - size(plan), 'x');
  ASSERT_EQ(size(plan) + added, 4095u);
  EXPECT_TRUE(PlanClones(m, "/s", request, "/r", {Seed('1')}, ports).ok());
  // A longer name does not.
  request.prefix = "a-longer-prefix";
  l = PlanClones(m, "/s", request, "/r", {Seed('1')}, ports);
  EXPECT_THAT(l.status().message(), HasSubstr("4 KiB block"));
}

TEST(CloneTest, FixedHostPortsCountUpPerClone) {
  CloneRequest request;
  request.count = 3;
  PublishedPort port;
  port.set_host_port(9000);
  port.set_guest_port(8080);
  request.ports = {port};
  EXPECT_EQ(ClonePorts(Manifest(), request, 2)[0].host_port(), 9002u);
}

TEST(CloneTest, WhatCannotBeClonedYetIsSaid) {
  CloneRequest request;
  request.count = 1;
  std::vector<std::vector<PublishedPort>> ports = {{}};
  request.memory = MemoryBackend::kUffd;
  absl::StatusOr<std::vector<Launch>> l =
      PlanClones(Manifest(), "/s", request, "/r", {Seed('1')}, ports);
  EXPECT_THAT(l.status().message(), HasSubstr("--mem-backend uffd"));
  request.memory = MemoryBackend::kFile;
  request.prefix = "Bad_Name";
  l = PlanClones(Manifest(), "/s", request, "/r", {Seed('1')}, ports);
  EXPECT_THAT(l.status().message(), HasSubstr("bad VM name"));
}

}  // namespace
}  // namespace fcvm::runner
