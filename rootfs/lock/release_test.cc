#include "rootfs/lock/release.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/signing_key.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

std::string ReleaseText() {
  return absl::StrCat(
      "Origin: Debian\nSuite: stable\nCodename: bookworm\n"
      "Architectures: all amd64 arm64\nComponents: main contrib\n"
      "MD5Sum:\n 0123456789abcdef0123456789abcdef 100 "
      "main/binary-amd64/Packages\n"
      "SHA256:\n ",
      kHashA, "  8874021 main/binary-amd64/Packages.xz\n ", kHashB,
      " 45000000 main/binary-arm64/Packages\n");
}

TEST(ParseReleaseTest, ReadsFieldsAndSha256Only) {
  absl::StatusOr<Release> r = ParseRelease(ReleaseText());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suite, "stable");
  EXPECT_EQ(r->codename, "bookworm");
  EXPECT_THAT(r->architectures,
              ::testing::ElementsAre("all", "amd64", "arm64"));
  EXPECT_THAT(r->components, ::testing::ElementsAre("main", "contrib"));
  ASSERT_EQ(r->sha256.size(), 2u);
  EXPECT_EQ(r->sha256["main/binary-amd64/Packages.xz"].size, 8874021u);
  EXPECT_EQ(r->sha256["main/binary-amd64/Packages.xz"].sha256, kHashA);
  EXPECT_EQ(r->sha256.count("main/binary-amd64/Packages"), 0u);  // MD5 only.
}

TEST(ParseReleaseTest, Malformed) {
  EXPECT_EQ(ParseRelease("Suite: x\n").status().message(),
            "Release file has no SHA256 entries");
  EXPECT_EQ(ParseRelease("SHA256:\n abc 12 p\n").status().message(),
            "Release:2: malformed SHA256 line ' abc 12 p'");
}

class VerifyInReleaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::SigningKey> key =
        testing::SigningKey::Create("fcvm test archive key");
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = new testing::SigningKey(*std::move(key));
    absl::StatusOr<testing::SigningKey> other =
        testing::SigningKey::Create("someone else");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = new testing::SigningKey(*std::move(other));
    dir_ = new std::string(std::getenv("TEST_TMPDIR"));
  }
  static void TearDownTestSuite() {
    delete key_;
    delete other_;
    delete dir_;
  }
  void Sign(const std::string& text, const std::string& path) {
    ASSERT_TRUE(key_->ClearSign(text, path).ok());
  }
  static testing::SigningKey* key_;
  static testing::SigningKey* other_;
  static std::string* dir_;
};
testing::SigningKey* VerifyInReleaseTest::key_ = nullptr;
testing::SigningKey* VerifyInReleaseTest::other_ = nullptr;
std::string* VerifyInReleaseTest::dir_ = nullptr;

TEST_F(VerifyInReleaseTest, GoodSignatureYieldsSignedText) {
  Sign(ReleaseText(), *dir_ + "/InRelease");
  absl::StatusOr<std::string> text =
      VerifyInRelease(*dir_ + "/InRelease", {key_->keyring()}, *dir_);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, ReleaseText());
}

TEST_F(VerifyInReleaseTest, TamperedContentIsRefused) {
  Sign(ReleaseText(), *dir_ + "/InRelease.t");
  absl::StatusOr<std::string> signed_text = ReadFile(*dir_ + "/InRelease.t");
  ASSERT_TRUE(signed_text.ok());
  std::string tampered = *signed_text;
  size_t at = tampered.find(kHashA);
  ASSERT_NE(at, std::string::npos);
  tampered.replace(at, 64, std::string(64, 'c'));
  ASSERT_TRUE(WriteFileAtomically(*dir_ + "/InRelease.t", tampered).ok());
  absl::StatusOr<std::string> text =
      VerifyInRelease(*dir_ + "/InRelease.t", {key_->keyring()}, *dir_);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("signature check of " + *dir_ + "/InRelease.t failed"));
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("BAD signature"));
}

TEST_F(VerifyInReleaseTest, UnknownKeyIsRefused) {
  Sign(ReleaseText(), *dir_ + "/InRelease.u");
  absl::StatusOr<std::string> text =
      VerifyInRelease(*dir_ + "/InRelease.u", {other_->keyring()}, *dir_);
  EXPECT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("No public key"));
}

TEST_F(VerifyInReleaseTest, UnsignedIsRefused) {
  ASSERT_TRUE(WriteFileAtomically(*dir_ + "/Release", ReleaseText()).ok());
  EXPECT_FALSE(
      VerifyInRelease(*dir_ + "/Release", {key_->keyring()}, *dir_).ok());
}

}  // namespace
}  // namespace fcvm::rootfs
