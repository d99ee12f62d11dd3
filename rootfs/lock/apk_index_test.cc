#include "rootfs/lock/apk_index.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/archive/apk_archive.h"
#include "rootfs/testing/apk_fixture.h"

namespace fcvm::rootfs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

int Cmp(const char* a, const char* b) {
  absl::StatusOr<int> c = CompareApkVersions(a, b);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? (*c > 0) - (*c < 0) : 99;
}

TEST(ApkVersionTest, OrderingMatchesApk) {
  EXPECT_EQ(Cmp("1.2.3-r0", "1.2.3-r0"), 0);
  EXPECT_EQ(Cmp("1.2.3-r0", "1.2.3-r1"), -1);
  EXPECT_EQ(Cmp("1.2.10", "1.2.9"), 1);
  EXPECT_EQ(Cmp("1.2", "1.2.1"), -1);
  EXPECT_EQ(Cmp("1.2.3_rc1", "1.2.3"), -1);
  EXPECT_EQ(Cmp("1.2.3_alpha", "1.2.3_beta"), -1);
  EXPECT_EQ(Cmp("1.2.3_p1", "1.2.3"), 1);
  EXPECT_EQ(Cmp("1.2.3a", "1.2.3"), 1);
  EXPECT_EQ(Cmp("1.2.3_git20240101", "1.2.3_p0"), -1);
  EXPECT_EQ(Cmp("1.01", "1.1"), -1);  // Fractional: compared as strings.
  EXPECT_EQ(Cmp("10.0", "9.9"), 1);
  EXPECT_FALSE(CompareApkVersions("1.2-x", "1").ok());
  EXPECT_FALSE(CompareApkVersions("", "1").ok());
  EXPECT_FALSE(CompareApkVersions("1.2_foo", "1").ok());
}

constexpr char kIndex[] =
    "C:Q1aaaa=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:400000\nI:600000\n"
    "p:so:libc.musl-x86_64.so.1=1\n\n"
    "C:Q1bbbb=\nP:busybox\nV:1.36.1-r29\nA:x86_64\nS:500000\n"
    "D:so:libc.musl-x86_64.so.1\np:cmd:sh=1.36.1-r29 /bin/sh\n\n"
    "C:Q1cccc=\nP:busybox\nV:1.36.1-r28\nA:x86_64\nS:500000\n"
    "D:so:libc.musl-x86_64.so.1\n\n"
    "C:Q1dddd=\nP:podman\nV:5.2.5-r0\nA:x86_64\nS:9000000\n"
    "D:conmon crun>=1.0 /bin/sh !docker\n\n"
    "C:Q1eeee=\nP:conmon\nV:2.1.12-r0\nA:x86_64\nS:40000\n"
    "D:so:libc.musl-x86_64.so.1\n\n"
    "C:Q1ffff=\nP:crun\nV:1.17-r0\nA:x86_64\nS:200000\n"
    "D:so:libc.musl-x86_64.so.1\np:oci-runtime\nk:10\n\n"
    "C:Q1gggg=\nP:runc\nV:1.1.14-r0\nA:x86_64\nS:3000000\n"
    "p:oci-runtime\nk:5\n\n"
    "C:Q1hhhh=\nP:docker\nV:27.3.1-r0\nA:x86_64\nS:3000000\n";

TEST(ApkIndexTest, ParsesStanzas) {
  absl::StatusOr<std::vector<ApkRecord>> index =
      ParseApkIndex(kIndex, "fixture");
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->size(), 8u);
  EXPECT_EQ((*index)[1].name, "busybox");
  EXPECT_EQ((*index)[1].FileName(), "busybox-1.36.1-r29.apk");
  EXPECT_THAT((*index)[3].depends,
              ElementsAre("conmon", "crun>=1.0", "/bin/sh", "!docker"));
  EXPECT_EQ((*index)[5].provider_priority, 10);
}

TEST(ApkIndexTest, MalformedIndexesAreNamed) {
  EXPECT_THAT(
      ParseApkIndex("P:x\nV:1\nA:x86_64\nS:1\n", "idx").status().message(),
      HasSubstr("idx: stanza at line 1 lacks"));
  EXPECT_THAT(
      ParseApkIndex("C:Q1=\nP:x\nV:1..2\nA:x\nS:1\n", "idx").status().message(),
      HasSubstr("invalid version '1..2'"));
  EXPECT_THAT(ParseApkIndex("garbage\n", "idx").status().message(),
              HasSubstr("line 1 is not 'X:value'"));
  EXPECT_FALSE(ParseApkIndex("C:Q1=\nP:x\nV:1\nA:x\nS:big\n", "idx").ok());
}

std::vector<std::string> Names(const std::vector<ApkRecord>& records) {
  std::vector<std::string> names;
  for (const ApkRecord& r : records) names.push_back(r.name + "=" + r.version);
  return names;
}

TEST(ApkIndexTest, ClosureFollowsSonamesProvidersAndVersions) {
  absl::StatusOr<std::vector<ApkRecord>> parsed =
      ParseApkIndex(kIndex, "fixture");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const std::vector<ApkRecord>& index = *parsed;
  absl::StatusOr<std::vector<ApkRecord>> closure =
      ResolveApkClosure(index, {"podman"});
  ASSERT_TRUE(closure.ok()) << closure.status();
  // crun named directly; /bin/sh through busybox's provides (newest
  // busybox); musl through its so: provide. docker is only a conflict.
  EXPECT_THAT(Names(*closure),
              ElementsAre("busybox=1.36.1-r29", "conmon=2.1.12-r0",
                          "crun=1.17-r0", "musl=1.2.5-r0", "podman=5.2.5-r0"));
  // A virtual name goes to the highest provider priority.
  closure = ResolveApkClosure(index, {"oci-runtime"});
  ASSERT_TRUE(closure.ok()) << closure.status();
  EXPECT_THAT(Names(*closure), ElementsAre("crun=1.17-r0", "musl=1.2.5-r0"));
  // Index order does not matter.
  std::vector<ApkRecord> reversed(index.rbegin(), index.rend());
  closure = ResolveApkClosure(reversed, {"podman"});
  ASSERT_TRUE(closure.ok()) << closure.status();
  EXPECT_THAT(Names(*closure),
              ElementsAre("busybox=1.36.1-r29", "conmon=2.1.12-r0",
                          "crun=1.17-r0", "musl=1.2.5-r0", "podman=5.2.5-r0"));
}

TEST(ApkIndexTest, UnsatisfiableAndConflictsAreExplained) {
  absl::StatusOr<std::vector<ApkRecord>> parsed =
      ParseApkIndex(kIndex, "fixture");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const std::vector<ApkRecord>& index = *parsed;
  absl::StatusOr<std::vector<ApkRecord>> closure =
      ResolveApkClosure(index, {"crun>=2"});
  ASSERT_FALSE(closure.ok());
  EXPECT_THAT(
      closure.status().message(),
      HasSubstr("no package satisfies 'crun>=2' (wanted by the image)"));
  closure = ResolveApkClosure(index, {"podman", "docker"});
  ASSERT_FALSE(closure.ok());
  EXPECT_THAT(closure.status().message(), HasSubstr("docker"));
  closure =
      ResolveApkClosure(index, {"busybox=1.36.1-r28", "busybox>=1.36.1-r29"});
  ASSERT_FALSE(closure.ok());
  EXPECT_THAT(closure.status().message(), HasSubstr("conflicts with busybox"));
}

TEST(ApkIndexTest, ReadsTheIndexOutOfApkindexTarGz) {
  // Signature member, then the index member, as Alpine publishes it.
  absl::StatusOr<std::string> sign = testing::TarSegment(
      {{.path = ".SIGN.RSA.fixture.rsa.pub", .data = "sig"}});
  absl::StatusOr<std::string> body =
      testing::TarSegment({{.path = "DESCRIPTION", .data = "v3.20"},
                           {.path = "APKINDEX", .data = kIndex}},
                          /*terminate=*/true);
  ASSERT_TRUE(sign.ok() && body.ok());
  const std::string path =
      std::string(std::getenv("TEST_TMPDIR")) + "/APKINDEX.tar.gz";
  ASSERT_TRUE(WriteFileAtomically(path, *testing::GzipMember(*sign) +
                                            *testing::GzipMember(*body))
                  .ok());
  absl::StatusOr<std::string> text = ReadApkIndexArchive(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, kIndex);
  // Truncated: a clear error, not a short index.
  const std::string cut = path + ".cut";
  ASSERT_TRUE(WriteFileAtomically(cut, ReadFile(path)->substr(0, 300)).ok());
  absl::StatusOr<std::string> truncated = ReadApkIndexArchive(cut);
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr(cut));
}

}  // namespace
}  // namespace fcvm::rootfs
