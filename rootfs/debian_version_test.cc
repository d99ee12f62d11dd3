#include "rootfs/debian_version.h"

#include <string>

#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

int Cmp(const std::string& a, const std::string& b) {
  absl::StatusOr<DebianVersion> va = ParseDebianVersion(a);
  absl::StatusOr<DebianVersion> vb = ParseDebianVersion(b);
  EXPECT_TRUE(va.ok()) << va.status();
  EXPECT_TRUE(vb.ok()) << vb.status();
  int c = CompareDebianVersions(*va, *vb);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

TEST(DebianVersionTest, ParsesParts) {
  absl::StatusOr<DebianVersion> v =
      ParseDebianVersion("1:7.2+dfsg-7+deb12u18+b3");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->epoch, 1u);
  EXPECT_EQ(v->upstream, "7.2+dfsg");
  EXPECT_EQ(v->revision, "7+deb12u18+b3");
  EXPECT_EQ(v->ToString(), "1:7.2+dfsg-7+deb12u18+b3");
}

TEST(DebianVersionTest, HyphenInUpstreamSplitsAtLast) {
  absl::StatusOr<DebianVersion> v = ParseDebianVersion("2.1-1.47.0-2+b2");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->upstream, "2.1-1.47.0");
  EXPECT_EQ(v->revision, "2+b2");
}

TEST(DebianVersionTest, Ordering) {
  EXPECT_EQ(Cmp("1.0", "1.0"), 0);
  EXPECT_EQ(Cmp("1.0", "1.1"), -1);
  EXPECT_EQ(Cmp("1.10", "1.9"), 1);      // Numbers, not strings.
  EXPECT_EQ(Cmp("1.01", "1.1"), 0);      // Leading zeros.
  EXPECT_EQ(Cmp("1.0~rc1", "1.0"), -1);  // ~ before the end.
  EXPECT_EQ(Cmp("1.0~rc1", "1.0~rc2"), -1);
  EXPECT_EQ(Cmp("1.0~~", "1.0~"), -1);
  EXPECT_EQ(Cmp("1.0a", "1.0+"), -1);  // Letters before symbols.
  EXPECT_EQ(Cmp("1.0", "1.0a"), -1);
  EXPECT_EQ(Cmp("1:0.1", "2.0"), 1);  // Epoch wins.
  EXPECT_EQ(Cmp("1.0-1", "1.0-1+deb12u1"), -1);
  EXPECT_EQ(Cmp("3.0.22-1~deb12u2", "3.0.22-1"), -1);
  EXPECT_EQ(Cmp("1.0", "1.0-0"), 0);  // Empty revision == "0".
}

TEST(DebianVersionTest, RejectsMalformed) {
  for (const char* bad : {"", "a1.0", "x:1.0", "1.0-", "1.0 beta", "1.0-a_b"}) {
    absl::StatusOr<DebianVersion> v = ParseDebianVersion(bad);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseDebianVersion("a1.0").status().message(),
            "invalid Debian version 'a1.0': upstream version must start with "
            "a digit");
}

TEST(DebianVersionTest, Relations) {
  DebianVersion v = *ParseDebianVersion("2.36-9");
  DebianVersion lo = *ParseDebianVersion("2.34");
  EXPECT_TRUE(Satisfies(v, *ParseVersionRelation(">="), lo));
  EXPECT_TRUE(Satisfies(v, *ParseVersionRelation(">>"), lo));
  EXPECT_FALSE(Satisfies(v, *ParseVersionRelation("<<"), lo));
  EXPECT_FALSE(Satisfies(v, *ParseVersionRelation("="), lo));
  EXPECT_TRUE(Satisfies(v, *ParseVersionRelation("="), v));
  EXPECT_EQ(ParseVersionRelation("~=").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fcvm::rootfs
