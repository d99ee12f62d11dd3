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

// A baked root filesystem: the image's config as flags, --rootfs on the
// agent's overlay, and the image's Entrypoint + Cmd as an image would run
// them.
constexpr char kBakedNginx[] = R"({
  "image": "rootfs:/dev/vdc",
  "rootfs": {
    "device": "/dev/vdc",
    "entrypoint": ["/docker-entrypoint.sh"],
    "cmd": ["nginx", "-g", "daemon off;"],
    "env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22"],
    "user": "www-data",
    "workingDir": "/var/www",
    "stopSignal": "SIGQUIT"
  }
})";

TEST(PodmanTest, BakedRootfsRunsWithTheImagesConfig) {
  Plan plan = MustParse(kBakedNginx);
  EXPECT_EQ(RootfsDevice(plan), "/dev/vdc");
  EXPECT_EQ(OciArchivePath(plan), "");
  EXPECT_THAT(
      PodmanRunArgv(plan, kRootfsMountPoint, /*pull_never=*/true),
      ElementsAre("podman", "run", "--name", "fcvm-workload", "--replace",
                  "--network=host", "--uts=host", "--sdnotify=conmon", "--env",
                  "NGINX_VERSION=1.22", "--env", "PATH=/usr/sbin:/usr/bin",
                  "--workdir=/var/www", "--user=www-data",
                  "--stop-signal=SIGQUIT",
                  R"(--entrypoint=["/docker-entrypoint.sh"])", "--rootfs",
                  "/run/fcvm/rootfs", "nginx", "-g", "daemon off;"));
}

TEST(PodmanTest, BakedRootfsTakesThePlansOverridesAsPodmanWould) {
  Plan plan = MustParse(kBakedNginx);
  // -e, -u, -w and args: args replace the Cmd, the entrypoint stays.
  (*plan.mutable_env())["PATH"] = "/bin";
  (*plan.mutable_env())["EXTRA"] = "1";
  plan.set_user("0:0");
  plan.set_working_dir("/tmp");
  plan.add_args("nginx");
  plan.add_args("-T");
  EXPECT_THAT(
      PodmanRunArgv(plan, kRootfsMountPoint, true),
      ElementsAre("podman", "run", "--name", "fcvm-workload", "--replace",
                  "--network=host", "--uts=host", "--sdnotify=conmon", "--env",
                  "EXTRA=1", "--env", "NGINX_VERSION=1.22", "--env",
                  "PATH=/bin", "--workdir=/tmp", "--user=0:0",
                  "--stop-signal=SIGQUIT",
                  R"(--entrypoint=["/docker-entrypoint.sh"])", "--rootfs",
                  "/run/fcvm/rootfs", "nginx", "-T"));
  // --entrypoint of the user's own: the image's Cmd goes with its
  // entrypoint (Podman's rule); args still follow.
  plan.clear_args();
  plan.add_command("/bin/sh");
  std::vector<std::string> argv = PodmanRunArgv(plan, kRootfsMountPoint, true);
  ASSERT_GE(argv.size(), 3u);
  EXPECT_THAT(std::vector<std::string>(argv.end() - 3, argv.end()),
              ElementsAre(R"(--entrypoint=["/bin/sh"])", "--rootfs",
                          "/run/fcvm/rootfs"));
  plan.add_args("-c");
  plan.add_args("id");
  argv = PodmanRunArgv(plan, kRootfsMountPoint, true);
  EXPECT_THAT(std::vector<std::string>(argv.end() - 4, argv.end()),
              ElementsAre("--rootfs", "/run/fcvm/rootfs", "-c", "id"));
}

TEST(PodmanTest, BakedRootfsWithOnlyACmd) {
  // busybox-httpd's config: a Cmd, no Entrypoint, no user: nothing but the
  // Cmd after the root filesystem.
  Plan plan = MustParse(R"({"image": "rootfs:/dev/vdc", "rootfs": {
      "device": "/dev/vdc", "cmd": ["/bin/busybox", "httpd", "-f"],
      "stopSignal": "SIGTERM"}})");
  EXPECT_THAT(
      PodmanRunArgv(plan, kRootfsMountPoint, false),
      ElementsAre("podman", "run", "--name", "fcvm-workload", "--replace",
                  "--network=host", "--uts=host", "--sdnotify=conmon",
                  "--stop-signal=SIGTERM", "--rootfs", "/run/fcvm/rootfs",
                  "/bin/busybox", "httpd", "-f"));
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
