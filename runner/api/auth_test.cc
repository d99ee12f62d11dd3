#include "runner/api/auth.h"

#include <sys/stat.h>

#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace fcvm::runner::api {
namespace {

std::string TempFile(const std::string& name, const std::string& text,
                     mode_t mode) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  EXPECT_TRUE(WriteFileAtomically(path, text, mode).ok());
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
  return path;
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(
      ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(ApiKeys, LoadsKeysSkippingCommentsAndBlanks) {
  const std::string path = TempFile(
      "keys",
      "# fcvm api keys\n\n  e2b_0000000000000000000000000000000000000000  \n"
      "second-key-of-16-chars\n",
      0600);
  auto keys = ApiKeys::Load(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Accepts("e2b_0000000000000000000000000000000000000000"));
  EXPECT_TRUE(keys->Accepts("second-key-of-16-chars"));
  EXPECT_FALSE(keys->Accepts("e2b_0000000000000000000000000000000000000001"));
  EXPECT_FALSE(keys->Accepts(""));
  EXPECT_FALSE(keys->Accepts("# fcvm api keys"));
}

TEST(ApiKeys, RefusesUnsafeOrBadFilesNamingThem) {
  const std::string open_file =
      TempFile("open", "e2b_000000000000000000\n", 0644);
  auto open = ApiKeys::Load(open_file);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(open.status().message(), open_file));
  EXPECT_TRUE(absl::StrContains(open.status().message(), "(mode 0644)"))
      << open.status();
  EXPECT_TRUE(absl::StrContains(open.status().message(), "chmod 600"));

  auto short_key = ApiKeys::Load(TempFile("short", "# x\nshort\n", 0600));
  ASSERT_FALSE(short_key.ok());
  EXPECT_TRUE(absl::StrContains(short_key.status().message(), "short:2:"))
      << short_key.status();
  EXPECT_TRUE(absl::StrContains(short_key.status().message(), "too short"));

  auto spaced =
      ApiKeys::Load(TempFile("spaced", "two words in one key\n", 0600));
  ASSERT_FALSE(spaced.ok());
  EXPECT_TRUE(absl::StrContains(spaced.status().message(), "spaced:1:"));

  auto empty = ApiKeys::Load(TempFile("empty", "# nothing\n\n", 0600));
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(absl::StrContains(empty.status().message(), "no API keys"));

  auto missing = ApiKeys::Load("/nonexistent/keys");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(
      absl::StrContains(missing.status().message(), "/nonexistent/keys"));
}

TEST(MintAccessToken, SixtyFourHexDigitsEachTimeNew) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto token = MintAccessToken();
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->size(), 64u);
    EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(AccessTokens, DerivedFromAKeyMadeOnceAndKept) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/tokens");
  const std::string path = dir + "/api/access-token.key";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  absl::StatusOr<AccessTokens> made = AccessTokens::Open(path);
  ASSERT_TRUE(made.ok()) << made.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string token = made->For("sbx-1", "00000000000000aa");
  EXPECT_EQ(token.size(), 64u);
  EXPECT_TRUE(made->Accepts("sbx-1", "00000000000000aa", token));
  // Another VM, or the same name with a new id: another token.
  EXPECT_NE(made->For("sbx-2", "00000000000000aa"), token);
  EXPECT_NE(made->For("sbx-1", "00000000000000ab"), token);
  EXPECT_FALSE(made->Accepts("sbx-1", "00000000000000aa", token.substr(1)));
  // A second start (fcvm api restarted) reads the same key.
  absl::StatusOr<AccessTokens> again = AccessTokens::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->For("sbx-1", "00000000000000aa"), token);
  // HMAC-SHA256 as `printf 'what do ya want\nfor nothing?' | openssl dgst
  // -sha256 -hmac Jefe` computes it.
  EXPECT_EQ(
      AccessTokens::FromKey("Jefe").For("what do ya want", "for nothing?"),
      "50ff9fd552ba6f7d7aea9a88e93f2ebee2870bf860cfd7a2b6cf2cbbed92a13e");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(AccessTokens::Open(path).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(BasicAuthUser, AsTheSdkSendsIt) {
  const std::string user = "Basic " + absl::Base64Escape("user:");
  EXPECT_EQ(user, "Basic dXNlcjo=");  // The SDK's header for "user".
  auto parsed = BasicAuthUser(&user);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, "user");
  const std::string root = "Basic " + absl::Base64Escape("root:");
  EXPECT_EQ(*BasicAuthUser(&root), "root");
  EXPECT_EQ(*BasicAuthUser(nullptr), "");
}

TEST(BasicAuthUser, RefusesWhatIsNotAUser) {
  for (const std::string& header : {
           std::string("Bearer abc"),
           std::string("Basic !!!"),
           "Basic " + absl::Base64Escape("nocolon"),
           "Basic " + absl::Base64Escape("../etc:"),
           "Basic " + absl::Base64Escape("Root:"),
           "Basic " + absl::Base64Escape(":"),
           "Basic " + absl::Base64Escape(std::string(40, 'a') + ":"),
       }) {
    auto parsed = BasicAuthUser(&header);
    EXPECT_FALSE(parsed.ok()) << header;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace fcvm::runner::api
