#include "rootfs/lock/debian_index.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

constexpr char kIndex[] = R"(Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
Multi-Arch: same
Priority: optional
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb
Size: 2757464
SHA256: 0f5d1f9b0f1c46d4c1c1a0c5e0bd0ddf2a6e4e7b7a2b1f0e6f1e2d3c4b5a6978
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: podman
Version: 4.3.1+ds1-8+deb12u1
Architecture: amd64
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: conmon (>= 2.0.18), crun | runc (>= 1.0.0~rc92~), libc6 (>= 2.34), golang-github-containers-common
Provides: podman-docker-compat (= 4.3.1)
Filename: pool/main/libp/libpod/podman_4.3.1+ds1-8+deb12u1_amd64.deb
Size: 10526152
SHA256: 1f5d1f9b0f1c46d4c1c1a0c5e0bd0ddf2a6e4e7b7a2b1f0e6f1e2d3c4b5a6978
)";

TEST(DependencyFieldTest, GroupsAlternativesVersionsQualifiers) {
  absl::StatusOr<std::vector<DependencyGroup>> groups = ParseDependencyField(
      "libc6 (>= 2.34), crun | runc (>> 1.0~rc1), perl:any");
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 3u);
  EXPECT_EQ((*groups)[0][0].name, "libc6");
  EXPECT_EQ((*groups)[0][0].relation, VersionRelation::kGreaterEqual);
  EXPECT_EQ((*groups)[0][0].version.ToString(), "2.34");
  ASSERT_EQ((*groups)[1].size(), 2u);
  EXPECT_EQ((*groups)[1][1].name, "runc");
  EXPECT_EQ((*groups)[1][1].relation, VersionRelation::kGreater);
  EXPECT_EQ((*groups)[2][0].name, "perl");
  EXPECT_EQ((*groups)[2][0].arch_qualifier, "any");
  EXPECT_FALSE((*groups)[2][0].relation.has_value());
}

TEST(DependencyFieldTest, EmptyIsNone) {
  EXPECT_TRUE(ParseDependencyField("")->empty());
}

TEST(DependencyFieldTest, RejectsGarbage) {
  absl::StatusOr<std::vector<DependencyGroup>> groups =
      ParseDependencyField("libc6 (>= 2.34, foo");
  EXPECT_EQ(groups.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDependencyField("foo [amd64]").status().message(),
            "cannot parse dependency 'foo [amd64]'");
}

TEST(PackagesIndexTest, ParsesStanzas) {
  absl::StatusOr<std::vector<PackageRecord>> records =
      ParsePackagesIndex(kIndex, "main/binary-amd64/Packages");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  const PackageRecord& libc = (*records)[0];
  EXPECT_EQ(libc.name, "libc6");
  EXPECT_EQ(libc.version_text, "2.36-9+deb12u14");
  EXPECT_EQ(libc.multi_arch, "same");
  EXPECT_EQ(libc.size, 2757464u);
  EXPECT_EQ(libc.filename, "pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb");
  const PackageRecord& podman = (*records)[1];
  ASSERT_EQ(podman.pre_depends.size(), 1u);
  EXPECT_EQ(podman.pre_depends[0][0].version.ToString(), "1.54~");
  EXPECT_EQ(podman.depends.size(), 4u);
  ASSERT_EQ(podman.provides.size(), 1u);
  EXPECT_EQ(podman.provides[0].name, "podman-docker-compat");
}

TEST(PackagesIndexTest, MissingFieldNamesPackageAndLine) {
  std::string index =
      "Package: a\nVersion: 1\nArchitecture: all\n"
      "Filename: pool/a.deb\nSize: 1\n\n"
      "Package: b\nVersion: 1\n";
  absl::StatusOr<std::vector<PackageRecord>> records =
      ParsePackagesIndex(index, "Packages");
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(records.status().message(),
            "Packages:1 (package 'a'): missing field SHA256");
}

TEST(PackagesIndexTest, BadHashAndBadLine) {
  std::string bad_hash =
      "Package: a\nVersion: 1\nArchitecture: all\n"
      "Filename: p\nSize: 1\nSHA256: xyz\n";
  EXPECT_THAT(std::string(ParsePackagesIndex(bad_hash, "P").status().message()),
              ::testing::HasSubstr("bad SHA256 'xyz'"));
  EXPECT_EQ(ParsePackagesIndex("no colon here\n", "P").status().message(),
            "P:1: expected 'Field: value', got 'no colon here'");
  EXPECT_EQ(ParsePackagesIndex(" continuation\n", "P").status().message(),
            "P:1: continuation line without a field");
}

}  // namespace
}  // namespace fcvm::rootfs
