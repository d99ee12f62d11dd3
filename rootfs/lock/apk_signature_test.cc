#include "rootfs/lock/apk_signature.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/apk_fixture.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

std::string Dir() { return std::getenv("TEST_TMPDIR"); }

void Run(const std::vector<std::string>& argv) {
  SubprocessOptions options{.argv = argv};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Minutes(1));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->exit.success()) << out->stderr_data;
}

// A key pair as abuild-keygen makes, the public half in keys/<name>.
std::string MakeKey(const std::string& name) {
  const std::string priv = absl::StrCat(Dir(), "/", name, ".priv");
  Run({"openssl", "genrsa", "-out", priv, "2048"});
  Run({"mkdir", "-p", Dir() + "/keys"});
  Run({"openssl", "rsa", "-in", priv, "-pubout", "-out",
       absl::StrCat(Dir(), "/keys/", name)});
  return priv;
}

// Signs `payload` (gzip members) as abuild-sign does: the signature of the
// payload in a first gzip member, then the payload.
std::string Sign(const std::string& payload, const std::string& priv,
                 const std::string& key_name, bool sha256) {
  const std::string in = Dir() + "/payload";
  const std::string sig = Dir() + "/payload.sig";
  EXPECT_TRUE(WriteFileAtomically(in, payload).ok());
  Run({"openssl", "dgst", sha256 ? "-sha256" : "-sha1", "-sign", priv, "-out",
       sig, in});
  absl::StatusOr<std::string> signature = ReadFile(sig);
  EXPECT_TRUE(signature.ok()) << signature.status();
  if (!signature.ok()) return "";
  absl::StatusOr<std::string> segment = testing::TarSegment(
      {{.path = absl::StrCat(sha256 ? ".SIGN.RSA256." : ".SIGN.RSA.", key_name),
        .data = *signature}});
  EXPECT_TRUE(segment.ok()) << segment.status();
  if (!segment.ok()) return "";
  absl::StatusOr<std::string> member = testing::GzipMember(*segment);
  EXPECT_TRUE(member.ok()) << member.status();
  if (!member.ok()) return "";
  return *member + payload;
}

std::string Payload() {
  absl::StatusOr<std::string> body = testing::TarSegment(
      {{.path = "APKINDEX", .data = "C:Q1x=\nP:a\nV:1\nA:x86_64\nS:1\n"}},
      /*terminate=*/true);
  return *testing::GzipMember(*body);
}

TEST(ApkSignatureTest, GoodSignaturesVerify) {
  const std::string priv = MakeKey("alpine-devel@example.org-1.rsa.pub");
  for (bool sha256 : {false, true}) {
    const std::string path = Dir() + "/APKINDEX.tar.gz";
    ASSERT_TRUE(WriteFileAtomically(
                    path, Sign(Payload(), priv,
                               "alpine-devel@example.org-1.rsa.pub", sha256))
                    .ok());
    absl::StatusOr<std::string> key = VerifyApkSignature(path, Dir() + "/keys");
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(*key, "alpine-devel@example.org-1.rsa.pub");
  }
}

TEST(ApkSignatureTest, TamperedUnknownAndUnsignedAreRefused) {
  const std::string priv = MakeKey("k1.rsa.pub");
  const std::string good = Sign(Payload(), priv, "k1.rsa.pub", false);
  const std::string path = Dir() + "/tampered.tar.gz";
  std::string tampered = good;
  tampered[tampered.size() - 12] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomically(path, tampered).ok());
  absl::StatusOr<std::string> key = VerifyApkSignature(path, Dir() + "/keys");
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(key.status().message(), HasSubstr("does not verify"));

  const std::string other = Dir() + "/other.tar.gz";
  ASSERT_TRUE(
      WriteFileAtomically(other, Sign(Payload(), priv, "nobody.rsa.pub", false))
          .ok());
  key = VerifyApkSignature(other, Dir() + "/keys");
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(key.status().message(),
              HasSubstr("key 'nobody.rsa.pub', which is not in"));

  const std::string unsigned_path = Dir() + "/unsigned.tar.gz";
  ASSERT_TRUE(WriteFileAtomically(unsigned_path, Payload()).ok());
  key = VerifyApkSignature(unsigned_path, Dir() + "/keys");
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(key.status().message(), HasSubstr("not a .SIGN.RSA signature"));
}

}  // namespace
}  // namespace fcvm::rootfs

namespace fcvm::rootfs {
namespace {

TEST(ApkPackageTest, ControlChecksumAndDatahashAreChecked) {
  std::string checksum;
  absl::StatusOr<std::string> apk =
      testing::MakeApk("pkgname = a\npkgver = 1-r0\n", {},
                       {{.path = "etc/a", .data = "x"}}, &checksum);
  ASSERT_TRUE(apk.ok());
  const std::string path = Dir() + "/a.apk";
  ASSERT_TRUE(WriteFileAtomically(path, *apk).ok());
  EXPECT_TRUE(VerifyApkPackage(path, checksum).ok())
      << VerifyApkPackage(path, checksum);
  absl::Status wrong = VerifyApkPackage(path, "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_THAT(wrong.message(), HasSubstr("but the signed index says Q1AAAA"));
  // Data swapped for other data: the datahash catches it.
  absl::StatusOr<std::string> other = testing::MakeApk(
      "pkgname = a\npkgver = 1-r0\n", {}, {{.path = "etc/a", .data = "evil"}});
  ASSERT_TRUE(other.ok());
  // Same control member as the good one, data member of the other.
  const size_t good_data = apk->rfind("\x1f\x8b");
  const size_t evil_data = other->rfind("\x1f\x8b");
  ASSERT_TRUE(WriteFileAtomically(path + ".mixed", apk->substr(0, good_data) +
                                                       other->substr(evil_data))
                  .ok());
  absl::Status mixed = VerifyApkPackage(path + ".mixed", checksum);
  EXPECT_THAT(mixed.message(), HasSubstr("data segment sha256 is"));
}

}  // namespace
}  // namespace fcvm::rootfs
