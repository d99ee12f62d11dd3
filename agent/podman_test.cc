#include "agent/podman.h"

#include "agent/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Plan MustParse(const char* json) {
  absl::StatusOr<Plan> plan = ParsePlan(json);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : Plan();
}

TEST(PodmanTest, MinimalPlan) {
  Plan plan = MustParse(R"({"image":"nginx"})");
  EXPECT_EQ(OciArchivePath(plan), "");
  EXPECT_THAT(PodmanRunArgv(plan, "nginx", false),
              ElementsAre("podman", "run", "--name", "fcvm-workload",
                          "--replace", "--network=host", "--uts=host",
                          "--sdnotify=conmon", "nginx"));
}

TEST(PodmanTest, EveryField) {
  Plan plan = MustParse(R"({
    "image": "oci-archive:/dev/vdc",
    "command": ["/bin/busybox", "httpd"],
    "args": ["-f", "-p", "8080"],
    "env": {"ZED": "last", "ALPHA": "a=b c"},
    "workingDir": "/srv/www",
    "user": "1000:1000",
    "ports": [{"hostPort": 8080, "guestPort": 8080}],
    "volumes": [
      {"blockDevice": "/dev/vdd", "containerPath": "/data"},
      {"directory": "/run/cache", "containerPath": "/cache", "readOnly": true}
    ],
    "resources": {"cpus": 2, "memoryMib": 256},
    "restart": "RESTART_ON_FAILURE"
  })");
  EXPECT_EQ(OciArchivePath(plan), "/dev/vdc");
  EXPECT_THAT(
      PodmanRunArgv(plan, "fcvm/busybox-httpd:latest", true),
      ElementsAre("podman", "run", "--name", "fcvm-workload", "--replace",
                  "--network=host", "--uts=host", "--sdnotify=conmon",
                  "--pull=never", "--env", "ALPHA=a=b c", "--env", "ZED=last",
                  "--workdir=/srv/www", "--user=1000:1000", "--cpus=2",
                  "--memory=256m", "--volume", "/run/fcvm/volumes/0:/data",
                  "--volume", "/run/cache:/cache:ro",
                  R"(--entrypoint=["/bin/busybox","httpd"])",
                  "fcvm/busybox-httpd:latest", "-f", "-p", "8080"));
}

TEST(PodmanTest, EntrypointIsExactJsonEvenWithQuotes) {
  Plan plan = MustParse(R"({"image":"x","command":["sh","-c","echo \"hi\""]})");
  std::vector<std::string> argv = PodmanRunArgv(plan, "x", false);
  EXPECT_THAT(argv,
              ::testing::Contains(R"(--entrypoint=["sh","-c","echo \"hi\""])"));
}

TEST(PodmanTest, LoadAndItsOutput) {
  EXPECT_THAT(PodmanLoadArgv("/dev/vdc"),
              ElementsAre("podman", "load", "-q", "-i", "/dev/vdc"));
  absl::StatusOr<std::string> loaded =
      LoadedImage("Loaded image: localhost/fcvm/nginx:latest\n");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, "localhost/fcvm/nginx:latest");
  loaded = LoadedImage(
      "Getting image source signatures\n"
      "Loaded image(s): a:1, b:2\n");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, "a:1");
  absl::StatusOr<std::string> none = LoadedImage("Error: bad archive\n");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(none.status().message(), HasSubstr("bad archive"));
}

TEST(PodmanTest, StopAndRestart) {
  EXPECT_THAT(PodmanStopArgv(absl::Seconds(10)),
              ElementsAre("podman", "stop", "-t", "10", "fcvm-workload"));
  EXPECT_THAT(PodmanRestartArgv(),
              ElementsAre("podman", "start", "--attach", "fcvm-workload"));
}

}  // namespace
}  // namespace fcvm::agent
