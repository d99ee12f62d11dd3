// Every request the Firecracker backend can send, checked against
// Firecracker's own API specifications: versions 1.10.1 and 1.16.1, pinned
// by sha256 (third_party/firecracker/specs.bzl), so the test runs wherever
// the project builds.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/plan.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/requests.h"
#include "runner/vmm/firecracker/testing/openapi.h"

namespace fcvm::runner::firecracker {
namespace {

using ::testing::HasSubstr;
using testing::OpenApiSpec;

std::vector<std::string> g_specs;

VmSpec FullSpec(const std::string& arch) {
  VmSpec spec;
  spec.set_name("contract");
  spec.set_arch(arch);
  spec.set_kernel("/var/lib/fcvm/vmlinux");
  spec.set_boot_args("root=/dev/vda ro init=/sbin/fcvm-init");
  spec.add_disks()->set_path("/var/lib/fcvm/base.ext4");
  spec.mutable_disks(0)->set_read_only(true);
  spec.add_disks()->set_path("/run/fcvm/vms/contract/disk.ext4");
  spec.add_disks()->set_path("/images/nginx.tar");
  spec.mutable_disks(2)->set_read_only(true);
  spec.set_vcpus(2);
  spec.set_memory_mib(512);
  Nic* nic = spec.add_nics();
  nic->set_tap("fcvm0");
  nic->set_guest_mac("06:00:0a:c8:00:02");
  spec.set_vsock_uds("/run/fcvm/vms/contract/vsock.sock");
  spec.set_vsock_cid(3);
  spec.set_log_path("/run/fcvm/vms/contract/firecracker.log");
  spec.set_metrics_path("/run/fcvm/vms/contract/metrics.fifo");
  agent::Plan& plan = *spec.mutable_plan();
  plan.set_image("oci-archive:/dev/vdc");
  plan.add_command("nginx");
  (*plan.mutable_env())["A"] = "1";
  plan.set_generation(7);
  plan.set_hostname("contract");
  return spec;
}

// Everything the backend sends: both CPUs, with and without a NIC.
std::vector<ApiRequest> AllRequests() {
  std::vector<ApiRequest> all;
  for (const std::string arch : {"x86_64", "aarch64"}) {
    VmSpec spec = FullSpec(arch);
    for (bool nic : {true, false}) {
      if (!nic) spec.clear_nics();
      absl::StatusOr<std::vector<ApiRequest>> requests =
          ConfigureRequests(spec);
      EXPECT_TRUE(requests.ok()) << requests.status();
      if (requests.ok())
        all.insert(all.end(), requests->begin(), requests->end());
    }
  }
  all.push_back(StartRequest());
  all.push_back(VmStateRequest("Paused"));
  all.push_back(VmStateRequest("Resumed"));
  all.push_back(SnapshotCreateRequest("/s/t1/vmstate", "/s/t1/memory"));
  all.push_back(
      SnapshotLoadRequest("/s/t1/vmstate", false, "/s/t1/memory", false));
  all.push_back(
      SnapshotLoadRequest("/s/t1/vmstate", true, "/run/t1.uffd.sock", true));
  absl::StatusOr<ApiRequest> mmds = MmdsPlanRequest(FullSpec("x86_64").plan());
  EXPECT_TRUE(mmds.ok()) << mmds.status();
  if (mmds.ok()) all.push_back(*mmds);
  return all;
}

TEST(ContractTest, EveryRequestFitsEverySpecVersion) {
  ASSERT_EQ(g_specs.size(), 2u)
      << "the pinned Firecracker specs (third_party/firecracker)";
  const std::vector<ApiRequest> requests = AllRequests();
  ASSERT_GE(requests.size(), 20u);
  for (const std::string& path : g_specs) {
    absl::StatusOr<OpenApiSpec> spec = OpenApiSpec::Load(path);
    ASSERT_TRUE(spec.ok()) << spec.status();
    int checked = 0;
    for (const ApiRequest& request : requests) {
      EXPECT_TRUE(spec->Check(request.method, request.path, request.body).ok())
          << spec->Check(request.method, request.path, request.body)
          << "\nbody: " << request.body;
      ++checked;
    }
    std::cout << "Firecracker " << spec->version() << ": " << checked
              << " requests fit\n";
  }
}

// A clone on a TAP of its own: network_overrides fits 1.16.1 and 1.10.1
// has no such field, which is why the backend sends it only to 1.12+ (and
// refuses to restore a TAP VM under an older one).
TEST(ContractTest, NetworkOverridesFitOnlyTheVersionsThatHaveThem) {
  ASSERT_EQ(g_specs.size(), 2u);
  const ApiRequest load =
      SnapshotLoadRequest("/s/t1/vmstate", false, "/s/t1/memory", false,
                          {{InterfaceId(0), "fcvm-t1-2"}});
  for (const std::string& path : g_specs) {
    absl::StatusOr<OpenApiSpec> spec = OpenApiSpec::Load(path);
    ASSERT_TRUE(spec.ok()) << spec.status();
    absl::Status fits = spec->Check(load.method, load.path, load.body);
    if (absl::StrContains(path, "v1.10")) {
      EXPECT_THAT(fits.message(), HasSubstr("network_overrides"));
    } else {
      EXPECT_TRUE(fits.ok()) << fits;
    }
  }
}

// The checker is what makes the test above mean something: show that it
// catches each kind of departure.
TEST(ContractTest, TheCheckerCatchesWhatFirecrackerWouldRefuse) {
  ASSERT_EQ(g_specs.size(), 2u)
      << "the pinned Firecracker specs (third_party/firecracker)";
  absl::StatusOr<OpenApiSpec> spec = OpenApiSpec::Load(g_specs.back());
  ASSERT_TRUE(spec.ok()) << spec.status();
  struct Case {
    std::string method, path, body, expected;
  };
  const std::vector<Case> cases = {
      {"PUT", "/drives/vda",
       R"({"drive_id":"vda","is_root_device":false,"path_on_hots":"/x"})",
       "body.path_on_hots is not a field of this object"},
      {"PUT", "/drives/vda", R"({"drive_id":"vda"})",
       "lacks the required 'is_root_device'"},
      {"PUT", "/machine-config", R"({"vcpu_count":"2","mem_size_mib":512})",
       "body.vcpu_count is not a number"},
      {"PUT", "/machine-config", R"({"vcpu_count":64,"mem_size_mib":512})",
       "above the maximum 32"},
      {"PUT", "/mmds/config",
       R"({"version":"V3","network_interfaces":["eth0"]})",
       "'V3' is not one of V1, V2"},
      {"PUT", "/actions", R"({"action_type":"Reboot"})", "is not one of"},
      {"PUT", "/network-interfaces/eth0", R"({"iface_id":"eth0"})",
       "lacks the required 'host_dev_name'"},
      {"PUT", "/nonexistent", "{}", "no such operation"},
      {"DELETE", "/drives/vda", "", "no such operation"},
      {"PUT", "/boot-source", "{not json", "not JSON"},
  };
  for (const Case& c : cases) {
    absl::Status status = spec->Check(c.method, c.path, c.body);
    EXPECT_FALSE(status.ok()) << c.method << " " << c.path << " " << c.body;
    EXPECT_THAT(status.message(), HasSubstr(c.expected));
  }
  // And MMDS contents are free-form.
  EXPECT_TRUE(spec->Check("PUT", "/mmds", R"({"any":{"thing":[1,"x"]}})").ok());
}

}  // namespace
}  // namespace fcvm::runner::firecracker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // The repository's SOURCE file comes along; the specs are the .yaml ones.
  for (int i = 1; i < argc; ++i) {
    if (absl::EndsWith(argv[i], ".yaml")) {
      fcvm::runner::firecracker::g_specs.push_back(argv[i]);
    }
  }
  return RUN_ALL_TESTS();
}
