#include "runner/vm/host_facts.h"

#include <cerrno>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;

TEST(HostFactsTest, LoopbackAndIpv6NameserversAreLeftOut) {
  EXPECT_THAT(HostNameservers("# a comment\nnameserver 127.0.0.53\n"
                              "nameserver 192.0.2.1\nsearch example\n"
                              "nameserver\t198.51.100.7\nnameserver ::1\n"),
              ElementsAre("192.0.2.1", "198.51.100.7"));
}

TEST(HostFactsTest, SeedsAreFreshEachTime) {
  std::set<std::string> ids, entropy;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<LaunchSeeds> seeds = DrawSeeds();
    ASSERT_TRUE(seeds.ok()) << seeds.status();
    EXPECT_EQ(seeds->id.size(), 16u);
    EXPECT_EQ(seeds->machine_id.size(), 32u);
    EXPECT_EQ(seeds->entropy.size(), 32u);
    EXPECT_EQ(seeds->name_suffix.size(), 4u);
    ids.insert(seeds->id);
    entropy.insert(seeds->entropy);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(entropy.size(), 20u);
}

// getrandom failing used to give every VM the id 5a5a... (colliding TAP
// names, a constant machine-id) and no entropy, silently.
TEST(HostFactsTest, NoRandomnessIsAnErrorNotAConstant) {
  absl::StatusOr<LaunchSeeds> seeds = DrawSeeds([](void*, size_t) -> ssize_t {
    errno = ENOSYS;
    return -1;
  });
  EXPECT_EQ(seeds.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(seeds.status().message(),
              ::testing::HasSubstr("getrandom: no random bytes"));
}

TEST(HostFactsTest, AMissingKernelIsNamed) {
  RunFlags flags;
  flags.image = "x";
  FactsRequest request;
  request.assets.kernel = "/nonexistent/vmlinux";
  request.assets.rootfs = "/nonexistent/base.ext4";
  request.state_root = "/nonexistent/state";
  request.resolve = [](const std::string& p) { return p; };
  absl::StatusOr<HostFacts> facts = GatherHostFacts(flags, request);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(facts.status().message(), "no such file: /nonexistent/vmlinux");
}

}  // namespace
}  // namespace fcvm::runner
