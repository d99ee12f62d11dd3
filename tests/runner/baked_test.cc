// Workload images baked as root filesystems, end to end under QEMU (TCG
// here) for the host's CPU, user-mode networking (published ports on
// 127.0.0.1 only): the agent mounts the drive and runs `podman run
// --rootfs`, loading nothing. A test image whose config sets everything
// (tests/runner/config_image) runs with its own entrypoint, cmd, env, user,
// working directory and exposed port, exactly as from its OCI archive, and
// run's -e, -u, -w and args override them; nginx and busybox-httpd from
// //runner:vm (which passes their baked root filesystems) serve their
// pages and log to `fcvm logs`.
//   baked_test --targets=qemu <the fixture's six programs> <base.ext4>
//              <config-image OCI archive> <config-image ext4>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/kvm.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The line the container prints first (its Cmd).
constexpr char kSaysWhoItIs[] =
    R"(echo "config-image: user=$(/bin/busybox id -u) pwd=$(pwd) )"
    R"(greeting=$GREETING"; exec /bin/busybox httpd -f -v -p 8081 -h /srv/www)";

class BakedTest : public FcvmTest {
 protected:
  // The host port `fcvm run` said guest port `guest` is at; 0 if none.
  static uint32_t PublishedAt(const std::string& err, uint32_t guest) {
    const std::string marker =
        absl::StrCat("guest port ", guest, "/tcp is at 127.0.0.1:");
    const size_t at = err.find(marker);
    if (at == std::string::npos) return 0;
    const size_t start = at + marker.size();
    uint32_t port = 0;
    if (!absl::SimpleAtoi(err.substr(start, err.find('\n', start) - start),
                          &port)) {
      return 0;
    }
    return port;
  }

  // fcvm run -d with the config image's assets given by hand: baked (its
  // ext4 and, for the config, its archive) or only its OCI archive.
  Result RunConfigImage(bool baked, std::vector<std::string> run_args) {
    const std::vector<std::string>& extra = g_programs.extra;
    std::vector<std::string> args = {"--kernel", g_programs.kernel,
                                     "--rootfs", extra[0],
                                     "--oci",    "config-image=" + extra[1]};
    if (baked) {
      args.insert(args.end(), {"--image-rootfs", "config-image=" + extra[2]});
    }
    args.insert(args.end(),
                {"run", "--backend", "qemu", "--accel", GetParam().accel});
    args.insert(args.end(), run_args.begin(), run_args.end());
    Result run = Fcvm(args, absl::Minutes(8));
    std::cout << run.err;
    return run;
  }

  void StopAndRemove(const std::string& name) {
    EXPECT_EQ(Fcvm({"stop", name}, absl::Minutes(3)).code, 0);
    EXPECT_EQ(Fcvm({"rm", name}).code, 0);
  }
};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BakedTest);

TEST_P(BakedTest, TheImagesConfigReachesTheContainerAsFromItsArchive) {
  for (const bool baked : {true, false}) {
    SCOPED_TRACE(baked ? "baked rootfs" : "OCI archive");
    const std::string name = baked ? "baked" : "archive";
    Result run = RunConfigImage(baked, {"-d", "--name", name, "config-image"});
    ASSERT_EQ(run.code, 0) << run.err;
    Remember(Inspect(name));
    EXPECT_THAT(run.err, HasSubstr(baked ? "image config-image: baked rootfs "
                                         : "image config-image: OCI archive "));
    const std::string inspect = Fcvm({"inspect", name}).out;
    if (baked) {
      EXPECT_THAT(inspect, HasSubstr("rootfs:/dev/vdc"));
      EXPECT_THAT(inspect, HasSubstr("GREETING=from the image"));
    } else {
      EXPECT_THAT(inspect, HasSubstr("oci-archive:/dev/vdc"));
    }
    // No -p: the port the image exposes is published, as from an archive.
    const uint32_t port = PublishedAt(run.err, 8081);
    ASSERT_NE(port, 0u) << run.err;
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm config-image"));
    // Entrypoint + Cmd ran as the image's user, in its working directory,
    // with its environment; its output is the container's log.
    const std::string logs = Fcvm({"logs", name}).out;
    EXPECT_THAT(logs, HasSubstr("config-image: user=65534 pwd=/srv/www "
                                "greeting=from the image"));
    EXPECT_THAT(logs, HasSubstr("response:200"));
    StopAndRemove(name);
  }
}

TEST_P(BakedTest, RunsFlagsOverrideTheImagesConfigAndTheRootIsWritable) {
  const uint16_t port = FreePort();
  Result run = RunConfigImage(
      true, {"-d", "--name", "over", "-e", "GREETING=overridden", "-u", "0",
             "-w", "/tmp", "-p", absl::StrCat(port, ":8081"), "config-image",
             kSaysWhoItIs});
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("over"));
  EXPECT_THAT(run.err, HasSubstr("baked rootfs"));
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  // The args replaced the Cmd; the image's Entrypoint (sh -c) stayed.
  EXPECT_THAT(Fcvm({"logs", "over"}).out,
              HasSubstr("config-image: user=0 pwd=/tmp greeting=overridden"));
  // The drive is read-only; the overlay on it (upper layer on the
  // writable disk) takes the writes.
  Result wrote = Fcvm({"exec", "over", "--", "/bin/busybox", "sh", "-c",
                       "echo written > /srv/www/new.txt && "
                       "/bin/busybox cat /srv/www/new.txt"});
  EXPECT_EQ(wrote.code, 0) << wrote.err;
  EXPECT_EQ(wrote.out, "written\n");
  // ...whose upper layer is on the writable disk, not in the VM's RAM.
  Result mounts = Fcvm({"exec", "--vm", "over", "--", "cat", "/proc/mounts"});
  EXPECT_THAT(mounts.out, HasSubstr("/dev/vdc /run/fcvm/image ext4 ro"));
  EXPECT_THAT(mounts.out,
              HasSubstr("overlay /run/fcvm/rootfs overlay rw,relatime,"
                        "lowerdir=/run/fcvm/image,upperdir=/var/lib/"
                        "containers/fcvm-rootfs/upper"));
  StopAndRemove("over");
}

TEST_P(BakedTest, NginxAndBusyboxHttpdFromTheLauncherServeTheirPages) {
  for (const auto& [image, guest, want, logged] :
       std::vector<std::tuple<std::string, uint32_t, std::string, std::string>>{
           {"nginx", 80, "Welcome to nginx", "\"GET / HTTP/1."},
           {"busybox-httpd", 8080, "fcvm busybox-httpd", "response:200"}}) {
    SCOPED_TRACE(image);
    Result run = Exec(Run({"-d", "--name", "web", image}), absl::Minutes(8));
    std::cout << run.err;
    ASSERT_EQ(run.code, 0) << run.err;
    Remember(Inspect("web"));
    EXPECT_THAT(run.err,
                HasSubstr(absl::StrCat("image ", image, ": baked rootfs ")));
    EXPECT_THAT(run.err, Not(HasSubstr("OCI archive")));
    const uint32_t port = PublishedAt(run.err, guest);
    ASSERT_NE(port, 0u) << run.err;
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(*page, HasSubstr(want));
    EXPECT_THAT(LogsOnceTheyHold("web", logged), HasSubstr(logged));
    StopAndRemove("web");
  }
}

INSTANTIATE_TEST_SUITE_P(Host, BakedTest, ::testing::ValuesIn(HostQemuTargets()),
                         TargetName);

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
