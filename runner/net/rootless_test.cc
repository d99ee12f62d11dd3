#include "runner/net/rootless.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::runner::net {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

PublishedPort Port(uint32_t host, uint32_t guest, const std::string& protocol) {
  PublishedPort port;
  port.set_host_port(host);
  port.set_guest_port(guest);
  port.set_protocol(protocol);
  return port;
}

// PATH holding only stand-ins for the helpers named.
void PathWith(const std::vector<std::string>& programs) {
  static int round = 0;
  const std::string dir =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/path", ++round);
  mkdir(dir.c_str(), 0755);
  for (const std::string& program : programs) {
    const std::string path = absl::StrCat(dir, "/", program);
    std::ofstream(path) << "#!/bin/sh\n";
    chmod(path.c_str(), 0755);
  }
  setenv("PATH", dir.c_str(), 1);
}

TEST(RootlessTest, AutoPrefersPastaThenSlirp4netns) {
  PathWith({"pasta", "slirp4netns"});
  EXPECT_EQ(*ChooseRootlessHelper("auto"), "pasta");
  EXPECT_EQ(*ChooseRootlessHelper("slirp4netns"), "slirp4netns");
  PathWith({"slirp4netns"});
  EXPECT_EQ(*ChooseRootlessHelper("auto"), "slirp4netns");
  absl::StatusOr<std::string> pasta = ChooseRootlessHelper("pasta");
  ASSERT_FALSE(pasta.ok());
  EXPECT_THAT(pasta.status().message(), HasSubstr("Debian package passt"));
  PathWith({});
  absl::StatusOr<std::string> none = ChooseRootlessHelper("auto");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(),
              HasSubstr("neither is in PATH (Debian packages passt, "
                        "slirp4netns)"));
  EXPECT_FALSE(ChooseRootlessHelper("vde").ok());
}

TEST(RootlessTest, PastaForwardsEachPortFromLoopbackOnly) {
  std::vector<std::string> argv =
      HelperArgv("pasta", 4242, "/unused",
                 {Port(8080, 80, "tcp"), Port(5353, 53, "udp")}, false);
  EXPECT_EQ(absl::StrJoin(argv, " "),
            "pasta --foreground --quiet --config-net --ipv4-only --no-map-gw "
            "-T none -U none -t 127.0.0.1/8080 -u 127.0.0.1/5353 4242");
  // No ports: none forwarded (pasta's default would forward every port
  // bound in the namespace); as root it stays root to enter the namespace.
  argv = HelperArgv("pasta", 7, "/unused", {}, true);
  EXPECT_EQ(absl::StrJoin(argv, " "),
            "pasta --foreground --quiet --config-net --ipv4-only --no-map-gw "
            "-T none -U none -t none -u none --runas 0 7");
}

TEST(RootlessTest, Slirp4netnsConfiguresTap0AndTakesPortsThroughItsApi) {
  EXPECT_THAT(
      HelperArgv("slirp4netns", 4242, "/run/vm/slirp4netns.sock",
                 {Port(8080, 80, "tcp")}, false),
      ElementsAre("slirp4netns", "--configure", "--mtu=65520",
                  "--disable-host-loopback",
                  "--api-socket=/run/vm/slirp4netns.sock", "4242", "tap0"));
  // Host port H lands on the namespace's port H, where the DNAT rule
  // takes it to the guest's port.
  google::protobuf::Struct request;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  SlirpHostForwardRequest(Port(8080, 80, "udp")), &request)
                  .ok());
  const auto& fields = request.fields();
  EXPECT_EQ(fields.at("execute").string_value(), "add_hostfwd");
  const auto& args = fields.at("arguments").struct_value().fields();
  EXPECT_EQ(args.at("proto").string_value(), "udp");
  EXPECT_EQ(args.at("host_addr").string_value(), "127.0.0.1");
  EXPECT_EQ(args.at("host_port").number_value(), 8080);
  EXPECT_EQ(args.at("guest_port").number_value(), 8080);
  EXPECT_FALSE(args.contains("guest_addr"));  // slirp4netns's 10.0.2.100.
}

TEST(RootlessTest, Slirp4netnsAnswers) {
  EXPECT_TRUE(SlirpResponseStatus(R"({"return":{"id":1}})").ok());
  absl::Status refused = SlirpResponseStatus(
      R"({"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}})");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.message(),
              HasSubstr("slirp4netns refused: bad request: add_hostfwd"));
  absl::Status garbage = SlirpResponseStatus("<html>");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.message(), HasSubstr("not JSON: '<html>'"));
}

}  // namespace
}  // namespace fcvm::runner::net
