#include "runner/vm/run_flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const char* NoEnv(const char*) { return nullptr; }

[[nodiscard]] absl::StatusOr<RunFlags> Parse(std::vector<std::string> args) {
  return ParseRunFlags(args, NoEnv);
}

TEST(RunFlagsTest, PodmanStyleFlagsThenImageThenTheContainersArgs) {
  absl::StatusOr<RunFlags> flags =
      ParseRunFlags({"--name",
                     "web",
                     "-p",
                     "8080:80",
                     "--publish=53:53/udp",
                     "-v",
                     "/srv/www:/usr/share/nginx/html:ro",
                     "-e",
                     "A=1",
                     "-e",
                     "HOME",
                     "--cpus",
                     "2",
                     "--memory=1g",
                     "-d",
                     "--restart",
                     "on-failure",
                     "nginx",
                     "-g",
                     "daemon off;"},
                    [](const char* name) -> const char* {
                      return std::string(name) == "HOME" ? "/root" : nullptr;
                    });
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->name, "web");
  EXPECT_EQ(flags->image, "nginx");
  EXPECT_THAT(flags->args, ElementsAre("-g", "daemon off;"));
  ASSERT_EQ(flags->ports.size(), 2u);
  EXPECT_EQ(flags->ports[0].host_port(), 8080u);
  EXPECT_EQ(flags->ports[0].guest_port(), 80u);
  EXPECT_EQ(flags->ports[0].protocol(), "tcp");
  EXPECT_EQ(flags->ports[1].protocol(), "udp");
  ASSERT_EQ(flags->volumes.size(), 1u);
  EXPECT_EQ(flags->volumes[0].host_path, "/srv/www");
  EXPECT_EQ(flags->volumes[0].guest_path, "/usr/share/nginx/html");
  EXPECT_TRUE(flags->volumes[0].read_only);
  EXPECT_THAT(flags->env, ElementsAre(Pair("A", "1"), Pair("HOME", "/root")));
  EXPECT_EQ(flags->cpus, 2u);
  EXPECT_EQ(flags->memory_mib, 1024u);
  EXPECT_TRUE(flags->detach);
  EXPECT_EQ(flags->restart, agent::RESTART_ON_FAILURE);
}

TEST(RunFlagsTest, Defaults) {
  absl::StatusOr<RunFlags> flags = Parse({"busybox-httpd"});
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(flags->cpus, 1u);
  EXPECT_EQ(flags->memory_mib, 512u);
  EXPECT_FALSE(flags->detach);
  EXPECT_EQ(flags->backend, "auto");
  EXPECT_EQ(flags->network, "auto");
  EXPECT_TRUE(flags->args.empty());
}

TEST(RunFlagsTest, DoubleDashEndsFlags) {
  absl::StatusOr<RunFlags> flags = Parse({"--", "-odd-image-name", "x"});
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(flags->image, "-odd-image-name");
}

TEST(RunFlagsTest, TheContainersFlagsAreItsOwn) {
  absl::StatusOr<RunFlags> flags =
      Parse({"-p", "1:2", "busybox", "sh", "-c", "echo -p x", "--name", "y"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_TRUE(flags->name.empty());
  ASSERT_EQ(flags->ports.size(), 1u);
  EXPECT_EQ(flags->image, "busybox");
  EXPECT_THAT(flags->args, ElementsAre("sh", "-c", "echo -p x", "--name", "y"));
  // pflag's "-p=HOST:GUEST" for a short flag works as in Podman.
  EXPECT_EQ(Parse({"-p=8080:80", "x"})->ports[0].host_port(), 8080u);
}

TEST(RunFlagsTest, RelativeVolumePathsAreTheCallersNotOurs) {
  RunFlagValues values;
  values.volume = {"www:/srv:ro", "/abs:/x:ro"};
  absl::StatusOr<RunFlags> flags = FinishRunFlags(
      values, {"busybox-httpd"}, NoEnv,
      [](const std::string& path) { return "/home/me/src/" + path; });
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->volumes[0].host_path, "/home/me/src/www");
  EXPECT_EQ(flags->volumes[1].host_path, "/abs");
}

TEST(RunFlagsTest, MorePodmanFlags) {
  absl::StatusOr<RunFlags> flags =
      Parse({"-w", "/app", "-u", "1000:1000", "--entrypoint", "/bin/sh",
             "--stop-timeout", "3", "--log-max-size", "1m", "img"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->workdir, "/app");
  EXPECT_EQ(flags->user, "1000:1000");
  EXPECT_THAT(flags->entrypoint, ElementsAre("/bin/sh"));
  EXPECT_EQ(flags->stop_timeout_seconds, 3u);
  EXPECT_EQ(flags->log_max_bytes, uint64_t{1} << 20);
  EXPECT_THAT(Parse({"--log-max-size", "1k", "img"}).status().message(),
              HasSubstr("at least 64k"));
}

TEST(RunFlagsTest, PublishForms) {
  EXPECT_EQ(ParsePublish("80")->host_port(), 80u);
  EXPECT_EQ(ParsePublish("80")->guest_port(), 80u);
  EXPECT_THAT(ParsePublish("8080:80/sctp").status().message(),
              HasSubstr("tcp or udp"));
  EXPECT_THAT(ParsePublish("0:80").status().message(),
              HasSubstr("'0' is not a port"));
  EXPECT_THAT(ParsePublish("127.0.0.1:8080:80").status().message(),
              HasSubstr("binding a host address is not supported"));
  EXPECT_THAT(ParsePublish("x:80").status().message(),
              HasSubstr("--publish 'x:80'"));
}

TEST(RunFlagsTest, MemoryUnitsAsPodmanHasThem) {
  EXPECT_EQ(*ParseMemoryMib("512m"), 512u);
  EXPECT_EQ(*ParseMemoryMib("2G"), 2048u);
  EXPECT_EQ(*ParseMemoryMib("1073741824"), 1024u);
  EXPECT_EQ(*ParseMemoryMib("131072k"), 128u);
  EXPECT_THAT(ParseMemoryMib("32m").status().message(),
              HasSubstr("at least 64m"));
  EXPECT_THAT(ParseMemoryMib("100000").status().message(),
              HasSubstr("whole number of MiB"));
  EXPECT_THAT(ParseMemoryMib("lots").status().message(),
              HasSubstr("like 512m"));
}

TEST(RunFlagsTest, LabelsTimeoutAndRm) {
  absl::StatusOr<RunFlags> flags =
      Parse({"--label", "team=infra", "-l", "empty", "--label=a=b=c",
             "--timeout", "30", "--rm", "img"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_THAT(flags->labels, ElementsAre(Pair("a", "b=c"), Pair("empty", ""),
                                         Pair("team", "infra")));
  EXPECT_EQ(flags->timeout_seconds, 30u);
  EXPECT_TRUE(flags->remove_on_exit);
  absl::StatusOr<RunFlags> plain = Parse({"img"});
  EXPECT_EQ(plain->timeout_seconds, 0u);
  EXPECT_FALSE(plain->remove_on_exit);
  // "-l=k=v" is pflag's "-l k=v"; a key must not be empty.
  EXPECT_THAT(Parse({"-l", "==v", "img"}).status().message(),
              HasSubstr("--label '==v': expected KEY=VALUE"));
  EXPECT_THAT(Parse({"--timeout", "soon", "img"}).status().message(),
              HasSubstr("--timeout"));
}

TEST(RunFlagsTest, ErrorsNameTheFlagAndValue) {
  EXPECT_THAT(Parse({"--frobnicate", "nginx"}).status().message(),
              HasSubstr("unknown flag '--frobnicate' (fcvm run --help"));
  EXPECT_THAT(Parse({"--name"}).status().message(), HasSubstr("--name"));
  EXPECT_THAT(Parse({"-d"}).status().message(), HasSubstr("no image"));
  EXPECT_THAT(Parse({"--cpus", "1.5", "x"}).status().message(),
              HasSubstr("whole number of vCPUs"));
  EXPECT_THAT(Parse({"--backend", "xen", "x"}).status().message(),
              HasSubstr("--backend 'xen': expected one of auto, firecracker"));
  EXPECT_THAT(Parse({"-v", "/x:relative", "x"}).status().message(),
              HasSubstr("the path in the VM must be absolute"));
  EXPECT_THAT(Parse({"-v", "/a:/b:rx", "x"}).status().message(),
              HasSubstr("unknown option 'rx'"));
  EXPECT_THAT(Parse({"-e", "=x", "x"}).status().message(),
              HasSubstr("expected NAME=VALUE"));
}

}  // namespace
}  // namespace fcvm::runner
