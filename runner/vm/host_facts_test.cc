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

// A baked root filesystem runs with its archive's config: without the
// archive it is refused before anything else is looked at, and a missing
// file is named.
TEST(HostFactsTest, ABakedRootfsNeedsItsArchiveAndAFile) {
  RunFlags flags;
  flags.image = "nginx";
  flags.network = "none";
  FactsRequest request;
  request.assets.image_rootfs["nginx"] = "/nonexistent/nginx.ext4";
  request.state_root = "/nonexistent/state";
  request.resolve = [](const std::string& p) { return p; };
  std::vector<std::string> notes;
  request.note = [&notes](const std::string& line) { notes.push_back(line); };
  absl::StatusOr<HostFacts> facts = GatherHostFacts(flags, request);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(facts.status().message(),
            "--image-rootfs nginx=/nonexistent/nginx.ext4: its config comes "
            "from the image's OCI archive: give --oci nginx=ARCHIVE too");
  request.assets.oci["nginx"] = "/nonexistent/nginx.tar";
  facts = GatherHostFacts(flags, request);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(facts.status().message(), "no such file: /nonexistent/nginx.ext4");
  EXPECT_TRUE(notes.empty());
  // Another image of the same launcher is not affected: it is the archive.
  flags.image = "other";
  request.assets.oci["other"] = "/nonexistent/other.tar";
  facts = GatherHostFacts(flags, request);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->image_archive, "/nonexistent/other.tar");
  EXPECT_EQ(facts->image_rootfs, "");
  EXPECT_THAT(notes, ElementsAre("image other: OCI archive "
                                 "/nonexistent/other.tar (podman load)"));
}

}  // namespace
}  // namespace fcvm::runner
