#include "agent/plan_source.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/plan.pb.h"
#include "agent/testing/mmds_server.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kPlan[] = R"({"image":"oci-archive:/dev/vdc","args":["-v"]})";

std::string TempDir(const std::string& name) {
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  mkdir(dir.c_str(), 0755);
  return dir;
}

MmdsOptions Mmds(uint16_t port) {
  MmdsOptions options;
  options.endpoint = {"127.0.0.1", port};
  return options;
}

TEST(PlanSourceTest, CommandLineWins) {
  std::string encoded;
  absl::WebSafeBase64Escape(kPlan, &encoded);  // No padding.
  auto source = ChoosePlanSource(
      absl::StrCat("console=ttyS0 fcvm.plan=", encoded, " panic=-1"),
      TempDir("no_fw_cfg"), Mmds(1));
  EXPECT_EQ(source->name(), "kernel command line");
  EXPECT_FALSE(source->CanChange());
  absl::StatusOr<std::string> json = source->Fetch(absl::Now());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, kPlan);
}

TEST(PlanSourceTest, BadCommandLinePlanIsNamed) {
  auto source = ChoosePlanSource("fcvm.plan=%%%", "/nonexistent", Mmds(1));
  absl::StatusOr<std::string> json = source->Fetch(absl::Now());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(json.status().message(), HasSubstr("fcvm.plan"));
}

TEST(PlanSourceTest, FwCfgFileWhenQemuOffersOne) {
  const std::string sysfs = TempDir("sysfs");
  const std::string path = FwCfgPath(sysfs, kFwCfgPlanName);
  ASSERT_EQ(system(absl::StrCat("mkdir -p $(dirname ", path, ")").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(path, kPlan).ok());
  auto source = ChoosePlanSource("console=ttyS0", sysfs, Mmds(1));
  EXPECT_EQ(source->name(), "fw_cfg");
  absl::StatusOr<std::string> json = source->Fetch(absl::Now());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, kPlan);
}

TEST(PlanSourceTest, FwCfgPortsWhenTheCommandLineNamesThem) {
  // x86 without ACPI: sysfs is empty, the ports are announced.
  auto source =
      ChoosePlanSource("console=ttyS0 qemu_fw_cfg.ioport=12@0x510:0:1:4",
                       TempDir("no_sysfs"), Mmds(1));
  EXPECT_EQ(source->name(), "fw_cfg");
  EXPECT_FALSE(source->CanChange());
}

TEST(PlanSourceTest, MmdsOtherwise) {
  auto server = testing::FakeMmds::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  // The host's side as the runner does it: its own PUT /mmds.
  Plan plan;
  plan.set_image("oci-archive:/dev/vdc");
  plan.add_args("-v");
  absl::StatusOr<runner::firecracker::ApiRequest> request =
      runner::firecracker::MmdsPlanRequest(plan);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_TRUE((*server)
                  ->HostRequest(request->method, request->path, request->body)
                  .ok());
  auto source = ChoosePlanSource("console=ttyS0", TempDir("empty_sysfs"),
                                 Mmds((*server)->port()));
  EXPECT_EQ(source->name(), "mmds");
  EXPECT_TRUE(source->CanChange());
  absl::StatusOr<std::string> json =
      source->Fetch(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(json.ok()) << json.status();
  // Firecracker's JSON of the subtree: the same plan, keys sorted.
  EXPECT_EQ(*json, R"({"args":["-v"],"image":"oci-archive:/dev/vdc"})");
  // After a restore the old token is not even tried.
  (*server)->ExpireTokens();
  source->Restored();
  json = source->Fetch(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"args":["-v"],"image":"oci-archive:/dev/vdc"})");
  EXPECT_EQ((*server)->unauthorized(), 0);
  EXPECT_EQ((*server)->token_requests(), 2);
}

}  // namespace
}  // namespace fcvm::agent
