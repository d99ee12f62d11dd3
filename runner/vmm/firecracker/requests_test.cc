#include "runner/vmm/firecracker/requests.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/api.pb.h"

namespace fcvm::runner::firecracker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

VmSpec Spec() {
  VmSpec spec;
  spec.set_name("web");
  spec.set_arch("aarch64");
  spec.set_kernel("/k/Image");
  spec.set_boot_args("root=/dev/vda ro");
  spec.add_disks()->set_path("/b/base.ext4");
  spec.mutable_disks(0)->set_read_only(true);
  spec.add_disks()->set_path("/v/disk.ext4");
  spec.set_vcpus(2);
  spec.set_memory_mib(256);
  spec.add_nics()->set_tap("fcvm-web");
  spec.mutable_plan()->set_image("nginx");
  return spec;
}

std::vector<std::string> Paths(const std::vector<ApiRequest>& requests) {
  std::vector<std::string> paths;
  for (const ApiRequest& r : requests) paths.push_back(r.method + " " + r.path);
  return paths;
}

TEST(RequestsTest, OrderAndPaths) {
  absl::StatusOr<std::vector<ApiRequest>> requests = ConfigureRequests(Spec());
  ASSERT_TRUE(requests.ok()) << requests.status();
  EXPECT_THAT(
      Paths(*requests),
      ElementsAre("PUT /machine-config", "PUT /boot-source", "PUT /drives/vda",
                  "PUT /drives/vdb", "PUT /network-interfaces/eth0",
                  "PUT /mmds/config", "PUT /mmds", "PUT /entropy"));
}

TEST(RequestsTest, BodiesAreTheTypedMessagesWithTheApisFieldNames) {
  absl::StatusOr<std::vector<ApiRequest>> requests = ConfigureRequests(Spec());
  ASSERT_TRUE(requests.ok());
  EXPECT_EQ((*requests)[0].body, R"({"vcpu_count":2,"mem_size_mib":256})");
  // false is sent: Firecracker requires is_root_device.
  EXPECT_EQ((*requests)[2].body,
            R"({"drive_id":"vda","is_root_device":false,"is_read_only":true,)"
            R"("path_on_host":"/b/base.ext4"})");
  EXPECT_EQ((*requests)[5].body,
            R"({"version":"V2","network_interfaces":["eth0"]})");
  EXPECT_EQ((*requests)[6].body, R"({"fcvm":{"plan":{"image":"nginx"}}})");
  BootSource boot;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage((*requests)[1].body, &boot)
          .ok());
  EXPECT_EQ(boot.boot_args(),
            "console=ttyS0 reboot=k panic=1 root=/dev/vda ro");
  EXPECT_EQ(StartRequest().body, R"({"action_type":"InstanceStart"})");
}

TEST(RequestsTest, WithoutANicThePlanGoesOnTheCommandLine) {
  VmSpec spec = Spec();
  spec.set_arch("x86_64");
  spec.clear_nics();
  absl::StatusOr<std::vector<ApiRequest>> requests = ConfigureRequests(spec);
  ASSERT_TRUE(requests.ok());
  EXPECT_THAT(Paths(*requests), Not(::testing::Contains("PUT /mmds")));
  std::string encoded;
  absl::WebSafeBase64Escape(R"({"image":"nginx"})", &encoded);
  EXPECT_THAT((*requests)[1].body, HasSubstr("pci=off"));
  EXPECT_THAT((*requests)[1].body, HasSubstr("fcvm.plan=" + encoded));
}

TEST(RequestsTest, APlanTooLargeForTheCommandLineIsRefusedWithTheWayOut) {
  VmSpec spec = Spec();
  spec.clear_nics();
  (*spec.mutable_plan()->mutable_env())["BIG"] = std::string(2000, 'x');
  absl::StatusOr<std::vector<ApiRequest>> requests = ConfigureRequests(spec);
  ASSERT_FALSE(requests.ok());
  EXPECT_THAT(requests.status().message(), HasSubstr("VM 'web'"));
  EXPECT_THAT(requests.status().message(),
              HasSubstr("give the VM a network interface"));
}

TEST(RequestsTest, SpecsFirecrackerCannotTakeAreNamed) {
  VmSpec spec = Spec();
  spec.set_vcpus(3);
  EXPECT_THAT(ConfigureRequests(spec).status().message(),
              HasSubstr("3 vCPUs; Firecracker takes 1 or an even number"));
  spec = Spec();
  spec.clear_disks();
  EXPECT_THAT(ConfigureRequests(spec).status().message(),
              HasSubstr("no root disk"));
  spec = Spec();
  spec.set_arch("riscv64");
  EXPECT_THAT(ConfigureRequests(spec).status().message(),
              HasSubstr("unknown architecture 'riscv64'"));
  spec = Spec();
  spec.set_memory_mib(16);
  EXPECT_THAT(ConfigureRequests(spec).status().message(),
              HasSubstr("16 MiB of memory is too little"));
}

// The MMDS document is a google.protobuf.Struct with the plan's JSON
// mapping inside; keys come out sorted, so the bytes never vary.
TEST(RequestsTest, MmdsPlanBodyIsTheFcvmDocumentWithThePlanInside) {
  agent::Plan plan;
  plan.set_image("oci-archive:/dev/vdc");
  plan.set_hostname("web-1");
  plan.set_generation(7);
  plan.set_host_time_unix_ms(1795000000000);
  agent::PortMapping* port = plan.add_ports();
  port->set_host_port(18080);
  port->set_guest_port(8080);
  (*plan.mutable_env())["ZED"] = "z";
  (*plan.mutable_env())["ALPHA"] = "a \"quoted\"";
  absl::StatusOr<ApiRequest> request = MmdsPlanRequest(plan);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, "PUT");
  EXPECT_EQ(request->path, "/mmds");
  EXPECT_EQ(request->body,
            R"({"fcvm":{"plan":{"env":{"ALPHA":"a \"quoted\"","ZED":"z"},)"
            R"("generation":"7","hostTimeUnixMs":"1795000000000",)"
            R"("hostname":"web-1","image":"oci-archive:/dev/vdc",)"
            R"("ports":[{"guestPort":8080,"hostPort":18080}]}}})");

  // The same plan built in another order: the same bytes.
  agent::Plan reordered;
  (*reordered.mutable_env())["ALPHA"] = "a \"quoted\"";
  (*reordered.mutable_env())["ZED"] = "z";
  reordered.MergeFrom(plan);
  absl::StatusOr<ApiRequest> again = MmdsPlanRequest(reordered);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->body, request->body);

  // And /fcvm/plan of that document is the plan, to the last field.
  google::protobuf::Struct document;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(request->body, &document)
          .ok());
  auto fcvm = document.fields().find("fcvm");
  ASSERT_NE(fcvm, document.fields().end());
  auto inside = fcvm->second.struct_value().fields().find(kMmdsPlanKey);
  ASSERT_NE(inside, fcvm->second.struct_value().fields().end());
  std::string plan_json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(inside->second, &plan_json)
          .ok());
  agent::Plan back;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(plan_json, &back).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, plan))
      << back.DebugString();
}

// The snapshot requests, as Firecracker reads them (the contract test
// checks them against both spec versions).
TEST(RequestsTest, PauseSnapshotAndLoadBodies) {
  ApiRequest pause = VmStateRequest("Paused");
  EXPECT_EQ(pause.method, "PATCH");
  EXPECT_EQ(pause.path, "/vm");
  EXPECT_EQ(pause.body, R"({"state":"Paused"})");
  ApiRequest create = SnapshotCreateRequest("/s/vmstate", "/s/memory");
  EXPECT_EQ(create.path, "/snapshot/create");
  EXPECT_EQ(create.body,
            R"({"snapshot_path":"/s/vmstate","mem_file_path":"/s/memory",)"
            R"("snapshot_type":"Full"})");
  ApiRequest load =
      SnapshotLoadRequest("/s/vmstate", true, "/run/u.sock", false);
  EXPECT_EQ(load.method, "PUT");
  EXPECT_EQ(load.path, "/snapshot/load");
  EXPECT_EQ(load.body,
            R"({"snapshot_path":"/s/vmstate","mem_backend":{"backend_type":)"
            R"("Uffd","backend_path":"/run/u.sock"},"resume_vm":false})");
  EXPECT_THAT(SnapshotLoadRequest("/s/vmstate", false, "/s/memory", true).body,
              HasSubstr(R"("backend_type":"File","backend_path":"/s/memory")"));
  EXPECT_THAT(
      SnapshotLoadRequest("/s/vmstate", false, "/s/memory", false,
                          {{InterfaceId(0), "tap-b"}})
          .body,
      HasSubstr(R"("network_overrides":[{"iface_id":"eth0",)"
                R"("host_dev_name":"tap-b"}])"));
}

TEST(RequestsTest, AnEmptyPlanIsAnEmptyObject) {
  absl::StatusOr<ApiRequest> request = MmdsPlanRequest(agent::Plan());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->body, R"({"fcvm":{"plan":{}}})");
}

TEST(RequestsTest, OptionalDevices) {
  VmSpec spec = Spec();
  spec.set_log_path("/v/fc.log");
  spec.set_metrics_path("/v/metrics");
  spec.set_vsock_uds("/v/vsock.sock");
  spec.set_vsock_cid(0);  // Defaults to the first guest CID.
  absl::StatusOr<std::vector<ApiRequest>> requests = ConfigureRequests(spec);
  ASSERT_TRUE(requests.ok());
  EXPECT_EQ(Paths(*requests).front(), "PUT /logger");
  EXPECT_THAT(Paths(*requests), ::testing::Contains("PUT /vsock"));
  for (const ApiRequest& r : *requests) {
    if (r.path == "/vsock") {
      EXPECT_EQ(r.body, R"({"guest_cid":3,"uds_path":"/v/vsock.sock"})");
    }
  }
}

}  // namespace
}  // namespace fcvm::runner::firecracker
