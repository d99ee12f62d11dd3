#include "rootfs/lock/debian_version.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/lock/debian_version_cases.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using testing::IsOkAndHolds;

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
  for (const VersionOrderCase& c : kVersionOrderCases) {
    EXPECT_THAT(OrderOfVersions(c.a, c.b), IsOkAndHolds(c.order))
        << c.a << " vs " << c.b << " (" << c.why << ")";
    // The order is antisymmetric.
    EXPECT_THAT(OrderOfVersions(c.b, c.a), IsOkAndHolds(-c.order))
        << c.b << " vs " << c.a << " (" << c.why << ")";
  }
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
  absl::StatusOr<DebianVersion> v = ParseDebianVersion("2.36-9");
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<DebianVersion> lo = ParseDebianVersion("2.34");
  ASSERT_TRUE(lo.ok()) << lo.status();
  auto satisfies = [](const DebianVersion& version, const char* relation,
                      const DebianVersion& bound) -> absl::StatusOr<bool> {
    absl::StatusOr<VersionRelation> r = ParseVersionRelation(relation);
    if (!r.ok()) return r.status();
    return Satisfies(version, *r, bound);
  };
  EXPECT_THAT(satisfies(*v, ">=", *lo), IsOkAndHolds(true));
  EXPECT_THAT(satisfies(*v, ">>", *lo), IsOkAndHolds(true));
  EXPECT_THAT(satisfies(*v, "<<", *lo), IsOkAndHolds(false));
  EXPECT_THAT(satisfies(*v, "<=", *lo), IsOkAndHolds(false));
  EXPECT_THAT(satisfies(*v, "=", *lo), IsOkAndHolds(false));
  EXPECT_THAT(satisfies(*v, "=", *v), IsOkAndHolds(true));
  EXPECT_THAT(satisfies(*v, "<=", *v), IsOkAndHolds(true));
  EXPECT_THAT(satisfies(*v, "<<", *v), IsOkAndHolds(false));
  EXPECT_EQ(ParseVersionRelation("~=").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fcvm::rootfs
