#include "agent/plan.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;

// A plan from JSON without the checks: what a host holds before it asks
// ValidatePlan.
Plan Unchecked(absl::string_view json) {
  Plan plan;
  const auto status =
      google::protobuf::util::JsonStringToMessage(std::string(json), &plan);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return plan;
}

constexpr char kNginx[] = R"json({
  "image": "oci-archive:/dev/vdc",
  "args": ["nginx", "-g", "daemon off;"],
  "env": {"LANG": "C.UTF-8"},
  "workingDir": "/",
  "ports": [{"hostPort": 8080, "guestPort": 80}],
  "volumes": [{"blockDevice": "/dev/vdd", "containerPath": "/data", "readOnly": true}],
  "resources": {"cpus": 2, "memoryMib": "512"},
  "restart": "RESTART_ON_FAILURE",
  "hostname": "web-1",
  "network": {"ipCidr": "10.200.0.2/30", "gateway": "10.200.0.1",
              "dns": ["10.200.0.1"], "mac": "06:00:0a:c8:00:02"},
  "generation": "3"
})json";

TEST(PlanTest, ParsesAFullPlan) {
  absl::StatusOr<Plan> plan = ParsePlan(kNginx);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->image(), "oci-archive:/dev/vdc");
  EXPECT_EQ(plan->args_size(), 3);
  EXPECT_EQ(plan->ports(0).guest_port(), 80u);
  EXPECT_EQ(plan->volumes(0).block_device(), "/dev/vdd");
  EXPECT_TRUE(plan->volumes(0).read_only());
  EXPECT_EQ(plan->resources().memory_mib(), 512u);
  EXPECT_EQ(plan->restart(), RESTART_ON_FAILURE);
  EXPECT_EQ(plan->network().gateway(), "10.200.0.1");
  EXPECT_EQ(plan->generation(), 3u);
}

TEST(PlanTest, RoundTripsThroughJson) {
  absl::StatusOr<Plan> plan = ParsePlan(kNginx);
  ASSERT_TRUE(plan.ok());
  absl::StatusOr<std::string> json = PlanToJson(*plan);
  ASSERT_TRUE(json.ok());
  absl::StatusOr<Plan> again = ParsePlan(*json);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), plan->SerializeAsString());
}

TEST(PlanTest, SnakeCaseFieldNamesWorkToo) {
  absl::StatusOr<Plan> plan =
      ParsePlan(R"({"image": "x", "working_dir": "/srv"})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->working_dir(), "/srv");
}

struct Bad {
  const char* json;
  const char* message;
};

TEST(PlanTest, IdentityFields) {
  absl::StatusOr<Plan> plan = ParsePlan(
      R"({"image": "x", "hostTimeUnixMs": "1795000000000", "entropy": "AAEC/w==",
          "machineId": "0123456789abcdef0123456789abcdef",
          "readiness": {"httpPath": "/"}, "ports": [{"guestPort": 8080}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->host_time_unix_ms(), 1795000000000u);
  EXPECT_EQ(plan->entropy(), std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(plan->readiness().http_path(), "/");
  EXPECT_FALSE(ParsePlan(absl::StrCat(R"({"image": "x", "entropy": ")",
                                      std::string(700, 'A'), "\"}"))
                   .ok());
}

TEST(PlanTest, BadPlansAreRefusedNamingTheField) {
  for (
      const Bad& bad : std::vector<Bad>{
          {R"({"image": "x", "imagee": "y"})", "imagee"},
          {R"({"args": ["a"]})", "image: required"},
          {"{not json", "not a valid plan"},
          {R"({"image": "x", "ports": [{"guestPort": 70000}]})",
           "outside 1-65535"},
          {R"({"image": "x", "ports": [{"guestPort": 80, "protocol": "sctp"}]})",
           "protocol 'sctp'"},
          {R"({"image": "x", "volumes": [{"containerPath": "/d"}]})",
           "no block_device or directory"},
          {R"({"image": "x", "volumes": [{"directory": "/a", "containerPath": "d"}]})",
           "is not absolute"},
          {R"({"image": "x", "hostname": "-bad-"})", "hostname"},
          {R"({"image": "x", "env": {"A=B": "c"}})", "bad variable name"},
          {R"({"image": "x", "network": {"ipCidr": "10.0.0.300/24"}})",
           "network.ip_cidr"},
          {R"({"image": "x", "network": {"ipCidr": "10.0.0.2/33"}})",
           "network.ip_cidr"},
          {R"({"image": "x", "network": {"gateway": "fe80::1"}})",
           "network.gateway"},
          {R"({"image": "x", "network": {"mac": "06:00:0a:c8:00"}})",
           "network.mac"},
          {R"({"image": "x", "restart": "SOMETIMES"})", "not a valid plan"},
          {R"({"image": "x", "workingDir": "srv"})", "working_dir"},
          {R"({"image": "x", "readiness": {"tcpPort": 70000}})",
           "readiness.tcp_port"},
          {R"({"image": "x", "readiness": {"tcpPort": 80, "httpPath": "x"}})",
           "readiness.http_path"},
          {R"({"image": "x", "readiness": {"httpPath": "/"}})",
           "no port to probe"},
          {R"({"image": "x", "machineId": "ABC"})", "machine_id"},
          {R"({"image": "x", "entropy": "not base64!"})", "not a valid plan"},
          {R"({"image": "rootfs:/dev/vdc"})",
           "plan: rootfs: image 'rootfs:/dev/vdc' needs rootfs.device"},
          {R"({"image": "rootfs:/dev/vdc",
               "rootfs": {"device": "/dev/vdd", "cmd": ["x"]}})",
           "plan: image: 'rootfs:/dev/vdc' is not 'rootfs:/dev/vdd'"},
          {R"({"image": "rootfs:vdc", "rootfs": {"device": "vdc"}})",
           "plan: rootfs.device: 'vdc' is not under /dev/"},
          {R"({"image": "rootfs:/dev/vdc",
               "rootfs": {"device": "/dev/vdc", "cmd": ["x"], "env": ["PATH"]}})",
           "plan: rootfs.env: 'PATH' is not KEY=VALUE"},
          {R"({"image": "rootfs:/dev/vdc",
               "rootfs": {"device": "/dev/vdc", "cmd": ["x"],
                          "workingDir": "srv"}})",
           "plan: rootfs.working_dir: 'srv' is not absolute"},
          {R"({"image": "rootfs:/dev/vdc", "rootfs": {"device": "/dev/vdc"}})",
           "plan: rootfs: no entrypoint, cmd, command or args to run"},
          {R"({"image": "rootfs:/dev/vdc",
               "rootfs": {"device": "/dev/vdc", "cmd": ["x"], "cmdd": []}})",
           "cmdd"},
      }) {
    absl::StatusOr<Plan> plan = ParsePlan(bad.json);
    EXPECT_FALSE(plan.ok()) << bad.json;
    EXPECT_THAT(plan.status().message(), HasSubstr(bad.message)) << bad.json;
  }
}

TEST(PlanTest, ValidatePlanIsParsePlansChecksWithTheSameMessages) {
  for (
      const char* json : {
          R"({"args": ["a"]})",
          R"({"image": "x y"})",
          R"({"image": "x", "env": {"A=B": "c"}})",
          R"({"image": "x", "workingDir": "srv"})",
          R"({"image": "x", "ports": [{"guestPort": 70000}]})",
          R"({"image": "x", "ports": [{"guestPort": 80, "protocol": "sctp"}]})",
          R"({"image": "x", "volumes": [{"containerPath": "/d"}]})",
          R"({"image": "x", "hostname": "my_vm"})",
          R"({"image": "x", "hostname": "web-"})",
          R"({"image": "x", "readiness": {"httpPath": "/"}})",
          R"({"image": "x", "machineId": "ABC"})",
          R"({"image": "x", "network": {"dns": ["::1"]}})",
      }) {
    const absl::Status validated = ValidatePlan(Unchecked(json));
    EXPECT_EQ(validated.code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(std::string(validated.message()),
                ::testing::StartsWith("plan: "))
        << json;
    EXPECT_EQ(ParsePlan(json).status(), validated) << json;
  }
  absl::StatusOr<Plan> good = ParsePlan(kNginx);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(ValidatePlan(*good).ok());
}

// What the runner would have sent for `fcvm run --name my_vm`: refused on
// the host, with the message the guest would give after a boot.
TEST(PlanTest, HostnamesTheAgentRefusesAreRefusedBeforeABoot) {
  Plan plan;
  plan.set_image("nginx");
  plan.set_hostname("my_vm");
  EXPECT_EQ(ValidatePlan(plan).message(),
            "plan: hostname: 'my_vm' is not a host name: '_' is not a letter, "
            "digit or '-'");
  plan.set_hostname("web-");
  EXPECT_EQ(ValidatePlan(plan).message(),
            "plan: hostname: 'web-' is not a host name: label 'web-' starts "
            "or ends with '-'");
  // No hostname is no hostname rule.
  plan.clear_hostname();
  EXPECT_TRUE(ValidatePlan(plan).ok());
}

TEST(PlanTest, ValidateHostnameSaysWhichPartBreaksTheRule) {
  for (const char* good :
       {"a", "web-1", "WEB-1", "x.y-z", "0", "a-b-c", "1.2.3.4"}) {
    EXPECT_TRUE(ValidateHostname(good).ok()) << good;
  }
  // The longest label, and the longest name.
  EXPECT_TRUE(ValidateHostname(std::string(63, 'a')).ok());
  EXPECT_TRUE(
      ValidateHostname(std::string(31, 'a') + "." + std::string(32, 'b')).ok());
  struct Case {
    std::string name;
    std::string message;
  };
  for (const Case& bad : std::vector<Case>{
           {"", "'' is not a host name: it is empty"},
           {"my_vm",
            "'my_vm' is not a host name: '_' is not a letter, digit or '-'"},
           {"web-",
            "'web-' is not a host name: label 'web-' starts or ends with '-'"},
           {"-web",
            "'-web' is not a host name: label '-web' starts or ends with '-'"},
           {"a.-b.c",
            "'a.-b.c' is not a host name: label '-b' starts or ends with '-'"},
           {"a..b", "'a..b' is not a host name: an empty label"},
           {"web.", "'web.' is not a host name: an empty label"},
           {".web", "'.web' is not a host name: an empty label"},
           {"a b",
            "'a b' is not a host name: ' ' is not a letter, digit or '-'"},
           {"caf\xc3\xa9",
            "'caf\\xc3\\xa9' is not a host name: '\\xc3' is not a letter, "
            "digit or '-'"},
           {"a\nb",
            "'a\\nb' is not a host name: '\\n' is not a letter, digit or '-'"},
           {std::string(65, 'a'),
            absl::StrCat("'", std::string(65, 'a'),
                         "' is not a host name: 65 bytes; at most 64")},
           {std::string(64, 'a'),
            absl::StrCat("'", std::string(64, 'a'),
                         "' is not a host name: a label of 64 bytes; at most "
                         "63")},
       }) {
    const absl::Status status = ValidateHostname(bad.name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.name;
    EXPECT_EQ(status.message(), bad.message);
  }
}

}  // namespace
}  // namespace fcvm::agent
