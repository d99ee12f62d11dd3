#include "agent/identity.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "agent/plan.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// A file's contents, or a failure naming why it could not be read (never
// a crash on a missing file).
std::string Contents(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    ADD_FAILURE() << contents.status();
    return "<unreadable>";
  }
  return *std::move(contents);
}

// The files only: the kernel side (hostname, entropy, clock, network) runs
// in the in-guest test and netconfig_test.
IdentityOptions FilesOnly(const std::string& name) {
  IdentityOptions options;
  options.root = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  mkdir(options.root.c_str(), 0755);
  mkdir((options.root + "/etc").c_str(), 0755);
  options.kernel = false;
  return options;
}

TEST(IdentityTest, WritesHostnameHostsMachineIdAndResolvConf) {
  absl::StatusOr<Plan> plan = ParsePlan(R"({"image": "x",
      "hostname": "web-7", "machineId": "0123456789abcdef0123456789abcdef",
      "network": {"dns": ["10.200.0.1", "10.200.0.2"]}})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  const IdentityOptions options = FilesOnly("full");
  absl::StatusOr<IdentityReport> report = ApplyIdentity(*plan, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(Contents(options.root + "/etc/hostname"), "web-7\n");
  EXPECT_THAT(Contents(options.root + "/etc/hosts"),
              HasSubstr("127.0.1.1\tweb-7\n"));
  EXPECT_EQ(Contents(options.root + "/etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n");
  EXPECT_EQ(Contents(options.root + "/etc/resolv.conf"),
            "nameserver 10.200.0.1\nnameserver 10.200.0.2\n");
  EXPECT_THAT(report->summary, HasSubstr("hostname web-7"));
}

TEST(IdentityTest, EachGenerationGetsAFreshRandomMachineId) {
  absl::StatusOr<Plan> plan = ParsePlan(R"({"image": "x"})");
  ASSERT_TRUE(plan.ok());
  const IdentityOptions options = FilesOnly("random");
  ASSERT_TRUE(ApplyIdentity(*plan, options).ok());
  const std::string first = Contents(options.root + "/etc/machine-id");
  ASSERT_TRUE(ApplyIdentity(*plan, options).ok());
  const std::string second = Contents(options.root + "/etc/machine-id");
  EXPECT_THAT(first, MatchesRegex("[0-9a-f]{32}\n"));
  EXPECT_NE(first, second);
}

TEST(IdentityTest, ClockWithinSlackOrAheadIsLeftAlone) {
  absl::StatusOr<absl::Duration> step =
      StepClock(absl::Now() + absl::Milliseconds(10), absl::Seconds(1));
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, absl::ZeroDuration());
  // A plan written an hour ago (a slow boot): the clock is not set back.
  step = StepClock(absl::Now() - absl::Hours(1), absl::Seconds(1));
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, absl::ZeroDuration());
}

}  // namespace
}  // namespace fcvm::agent
