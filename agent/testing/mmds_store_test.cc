// The fake MMDS against Firecracker 1.16's behaviour: every rule with its
// exact status, content type and body (the texts are Firecracker's).
#include "agent/testing/mmds_store.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr char kNoToken[] =
    "No MMDS token provided. Use `X-metadata-token` or "
    "`X-aws-ec2-metadata-token` header to specify the session token.";
constexpr char kInvalidToken[] = "MMDS token not valid.";
constexpr char kNoTtl[] =
    "Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
    "or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the "
    "token's lifetime.";
constexpr char kUnsupported[] =
    "Cannot retrieve value. The value has an unsupported type.";

// A document with one of each JSON type.
constexpr char kDocument[] = R"({
  "vm": {"name": "web-1", "zone": "lab"},
  "cpus": 2,
  "tags": ["blue", "green"],
  "paused": false,
  "nothing": null,
  "load": 0.75,
  "offset": -3,
  "note": "{\n  \"multi\": \"line\"\n}",
  "a/b": {"m~n": "escaped"}
})";

class MmdsStoreTest : public ::testing::Test {
 protected:
  MmdsStoreTest() : store_(clock_.NowFunction()) {}

  MmdsAnswer TokenPut(
      const std::string& ttl,
      const std::string& header = "X-metadata-token-ttl-seconds") {
    return store_.Answer("PUT", "/latest/api/token", {{header, ttl}});
  }
  std::string Token(int ttl_seconds = 60) {
    MmdsAnswer answer = TokenPut(absl::StrCat(ttl_seconds));
    EXPECT_EQ(answer.status, 200) << answer.body;
    return answer.body;
  }
  MmdsAnswer Get(const std::string& path, const std::string& accept = "") {
    MmdsHeaders headers = {{"X-metadata-token", token_}};
    if (!accept.empty()) headers.emplace_back("Accept", accept);
    return store_.Answer("GET", path, headers);
  }
  MmdsAnswer GetJson(const std::string& path) {
    return Get(path, "application/json");
  }
  void PutDocument() {
    ASSERT_TRUE(store_.Put(kDocument).ok());
    token_ = Token();
  }

  FakeClock clock_;
  MmdsStore store_;
  std::string token_;
};

void ExpectAnswer(const MmdsAnswer& answer, int status,
                  const std::string& content_type, const std::string& body) {
  EXPECT_EQ(answer.status, status) << answer.body;
  EXPECT_EQ(answer.content_type, content_type) << answer.body;
  EXPECT_EQ(answer.body, body);
}

void ExpectText(const MmdsAnswer& answer, int status, const std::string& body) {
  ExpectAnswer(answer, status, "text/plain", body);
}

// ---- The host side: one document, PUT / PATCH / GET /mmds.

TEST_F(MmdsStoreTest, TheDocumentIsEmptyUntilTheFirstPut) {
  EXPECT_EQ(store_.Get(), "{}");
}

TEST_F(MmdsStoreTest, PutReplacesTheWholeDocumentAndGetPrintsItSorted) {
  ASSERT_TRUE(store_.Put(R"({"old": "gone"})").ok());
  ASSERT_TRUE(
      store_.Put(R"({"b": {"y": 1, "x": "s"}, "a": [1, "two", true, null]})")
          .ok());
  EXPECT_EQ(store_.Get(), R"({"a":[1,"two",true,null],"b":{"x":"s","y":1}})");
  // Any JSON value is a document.
  ASSERT_TRUE(store_.Put(R"("just a string")").ok());
  EXPECT_EQ(store_.Get(), R"("just a string")");
  // A null document reads as an empty one.
  ASSERT_TRUE(store_.Put("null").ok());
  EXPECT_EQ(store_.Get(), "{}");
}

TEST_F(MmdsStoreTest, PutOfSomethingNotJsonIsRefusedAndChangesNothing) {
  ASSERT_TRUE(store_.Put(R"({"kept": 1})").ok());
  for (const char* bad : {"", "{not json", R"({"a": 1} trailing)"}) {
    absl::Status status = store_.Put(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()),
                StartsWith("An error occurred when deserializing the json "
                           "body of a request: "))
        << bad;
    EXPECT_TRUE(absl::EndsWith(status.message(), ".")) << status.message();
  }
  EXPECT_EQ(store_.Get(), R"({"kept":1})");
}

TEST_F(MmdsStoreTest, PatchBeforeAnyPutIsRefused) {
  absl::Status status = store_.Patch(R"({"a": 1})");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "MMDS error: The MMDS data store is not initialized.");
  EXPECT_EQ(store_.Get(), "{}");
}

TEST_F(MmdsStoreTest, PatchIsAJsonMergePatch) {
  // Null removes, objects merge, other values (an object onto a string, a
  // string onto an object) replace.
  ASSERT_TRUE(store_
                  .Put(R"({"vm": {"name": "web-1", "zone": "lab"},
                           "size": "small",
                           "disks": {"root": {"ro": "yes", "path": "/b"},
                                     "data": "/d"}})")
                  .ok());
  ASSERT_TRUE(store_
                  .Patch(R"({"vm": {"zone": null, "owner": "ops"},
                             "size": "large",
                             "disks": {"root": "/r",
                                       "data": {"path": "/d2", "ro": "no"}}})")
                  .ok());
  EXPECT_EQ(store_.Get(),
            R"({"disks":{"data":{"path":"/d2","ro":"no"},"root":"/r"},)"
            R"("size":"large","vm":{"name":"web-1","owner":"ops"}})");
  // Removing a key that is not there is no error; arrays are replaced.
  ASSERT_TRUE(store_.Patch(R"({"nope": null, "list": [1]})").ok());
  ASSERT_TRUE(store_.Patch(R"({"list": [2, 3]})").ok());
  EXPECT_THAT(store_.Get(), ::testing::HasSubstr(R"("list":[2,3])"));
  EXPECT_THAT(store_.Get(), ::testing::Not(::testing::HasSubstr("nope")));
  // A patch that is not an object replaces the document.
  ASSERT_TRUE(store_.Patch("[1]").ok());
  EXPECT_EQ(store_.Get(), "[1]");
  // An object patch onto a non-object starts from an empty object.
  ASSERT_TRUE(store_.Patch(R"({"a": {"b": null, "c": 1}})").ok());
  EXPECT_EQ(store_.Get(), R"({"a":{"c":1}})");
}

TEST_F(MmdsStoreTest, TheSizeLimitAppliesToPutAndToThePatchedResult) {
  MmdsStore small(clock_.NowFunction(), /*size_limit=*/12);
  ASSERT_TRUE(small.Put(R"({"a":"1234"})").ok());  // 12 bytes: fits.
  absl::Status status = small.Put(R"({"a":"12345"})");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
  status = small.Patch(R"({"b":1})");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(small.Get(), R"({"a":"1234"})");
  EXPECT_EQ(MmdsStore::kDefaultSizeLimit, 51200u);
}

// ---- The guest side: tokens.

TEST_F(MmdsStoreTest, ATokenIsPlainTextAndTheTtlIsEchoed) {
  MmdsAnswer answer = TokenPut("60");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.content_type, "text/plain");
  // Firecracker's tokens are 36 bytes in base64.
  EXPECT_THAT(answer.body, MatchesRegex("[A-Za-z0-9+/]{48}"));
  EXPECT_THAT(answer.headers,
              ElementsAre(Pair("X-metadata-token-ttl-seconds", "60")));
  EXPECT_NE(TokenPut("60").body, answer.body);
  // EC2's header name works too, and is echoed as the guest spelled it.
  answer = TokenPut("7", "x-AWS-ec2-metadata-token-ttl-seconds");
  EXPECT_EQ(answer.status, 200);
  EXPECT_THAT(answer.headers,
              ElementsAre(Pair("x-AWS-ec2-metadata-token-ttl-seconds", "7")));
  // So does "//" in the path, and the absolute form.
  EXPECT_EQ(store_
                .Answer("PUT", "http://169.254.169.254//latest//api/token",
                        {{"X-metadata-token-ttl-seconds", "60"}})
                .status,
            200);
}

TEST_F(MmdsStoreTest, TokenTtlMustBeAU32From1To21600) {
  EXPECT_EQ(TokenPut("1").status, 200);
  EXPECT_EQ(TokenPut("21600").status, 200);
  EXPECT_EQ(TokenPut("+60").status, 200);  // Rust's u32 parser takes '+'.
  for (const char* out_of_range : {"0", "21601", "4294967295"}) {
    ExpectText(TokenPut(out_of_range), 400,
               absl::StrCat("Invalid time to live value provided for token: ",
                            out_of_range,
                            ". Please provide a value between 1 and 21600."));
  }
  for (const char* not_u32 : {"-1", "abc", "60s", "4294967296", "1.5", ""}) {
    ExpectText(TokenPut(not_u32), 400,
               absl::StrCat("Invalid header. Reason: Invalid value. "
                            "Key:X-metadata-token-ttl-seconds; Value:",
                            not_u32));
  }
  ExpectText(store_.Answer("PUT", "/latest/api/token", {}), 400, kNoTtl);
}

TEST_F(MmdsStoreTest, ATokenRequestThroughAProxyIsRefused) {
  for (const char* name : {"X-Forwarded-For", "x-forwarded-for"}) {
    ExpectText(store_.Answer("PUT", "/latest/api/token",
                             {{"X-metadata-token-ttl-seconds", "60"},
                              {name, "192.0.2.1"}}),
               400,
               absl::StrCat("Invalid header. Reason: Unsupported header "
                            "name. Key: ",
                            name));
  }
}

TEST_F(MmdsStoreTest, PutIsOnlyForTheTokenPath) {
  ExpectText(
      store_.Answer("PUT", "/token", {{"X-metadata-token-ttl-seconds", "60"}}),
      404, "Resource not found: /token.");
}

TEST_F(MmdsStoreTest, GetNeedsALiveToken) {
  PutDocument();
  // The token is checked before the path.
  ExpectText(store_.Answer("GET", "/vm", {}), 401, kNoToken);
  ExpectText(store_.Answer("GET", "/nowhere", {}), 401, kNoToken);
  ExpectText(store_.Answer("GET", "/vm", {{"X-metadata-token", "not-a-token"}}),
             401, kInvalidToken);
  ExpectText(store_.Answer("GET", "/vm/name", {{"x-Metadata-Token", token_}}),
             200, "web-1");
  ExpectText(
      store_.Answer("GET", "/vm/name", {{"X-aws-ec2-metadata-token", token_}}),
      200, "web-1");
}

TEST_F(MmdsStoreTest, ATokenLivesExactlyItsTtl) {
  PutDocument();
  const std::string short_lived = Token(1);
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(
      store_.Answer("GET", "/vm/name", {{"X-metadata-token", short_lived}})
          .status,
      200);
  clock_.Advance(absl::Milliseconds(1));
  ExpectText(
      store_.Answer("GET", "/vm/name", {{"X-metadata-token", short_lived}}),
      401, kInvalidToken);
  // The 60 s one still works.
  EXPECT_EQ(Get("/vm/name").status, 200);
}

TEST_F(MmdsStoreTest, ExpireTokensKillsEveryTokenButKeepsTheDocument) {
  PutDocument();
  store_.ExpireTokens();
  ExpectText(Get("/vm/name"), 401, kInvalidToken);
  token_ = Token();
  ExpectText(Get("/vm/name"), 200, "web-1");
}

// ---- The guest side: answers, JSON or IMDS text.

TEST_F(MmdsStoreTest, ObjectsInImdsTextListTheirKeysSubObjectsWithASlash) {
  PutDocument();
  ExpectText(Get("/"), 200,
             "a/b/\ncpus\nload\nnote\nnothing\noffset\npaused\ntags\n"
             "vm/");
  ExpectText(Get("/vm"), 200, "name\nzone");
  ExpectText(Get("/vm/"), 200, "name\nzone");
  ExpectText(Get("/vm/name"), 200, "web-1");
  ExpectText(Get("/note"), 200, "{\n  \"multi\": \"line\"\n}");
  ExpectText(Get("/tags/0"), 200, "blue");
  ExpectText(Get("/tags/1/"), 200, "green");
}

TEST_F(MmdsStoreTest, ImdsTextHasNoFormForNumbersBoolsNullsOrArrays) {
  PutDocument();
  for (const char* path : {"/cpus", "/offset", "/load", "/paused", "/nothing",
                           "/tags", "/tags/"}) {
    ExpectText(Get(path), 501, kUnsupported);
  }
}

TEST_F(MmdsStoreTest, AcceptApplicationJsonGetsTheSubtreeAsJson) {
  PutDocument();
  ExpectAnswer(GetJson("/vm"), 200, "application/json",
               R"({"name":"web-1","zone":"lab"})");
  ExpectAnswer(GetJson("/vm/name"), 200, "application/json", R"("web-1")");
  ExpectAnswer(GetJson("/cpus"), 200, "application/json", "2");
  ExpectAnswer(GetJson("/offset"), 200, "application/json", "-3");
  ExpectAnswer(GetJson("/load"), 200, "application/json", "0.75");
  ExpectAnswer(GetJson("/paused"), 200, "application/json", "false");
  ExpectAnswer(GetJson("/nothing"), 200, "application/json", "null");
  ExpectAnswer(GetJson("/tags"), 200, "application/json",
               R"(["blue","green"])");
  ExpectAnswer(GetJson("/tags/0"), 200, "application/json", R"("blue")");
  ExpectAnswer(GetJson("/note"), 200, "application/json",
               R"("{\n  \"multi\": \"line\"\n}")");
}

TEST_F(MmdsStoreTest, OnlyAnExactMediaTypeInAcceptCounts) {
  PutDocument();
  ExpectText(Get("/vm", "text/plain"), 200, "name\nzone");
  ExpectAnswer(Get("/vm", "  application/json "), 200, "application/json",
               R"({"name":"web-1","zone":"lab"})");
  for (const char* other : {"*/*", "application/json, text/plain",
                            "application/json; q=1", "Application/JSON"}) {
    ExpectText(Get("/vm", other), 200, "name\nzone");
  }
  // The last usable Accept wins.
  MmdsAnswer answer = store_.Answer("GET", "/vm",
                                    {{"X-metadata-token", token_},
                                     {"Accept", "application/json"},
                                     {"accept", "text/plain"},
                                     {"Accept", "*/*"}});
  ExpectText(answer, 200, "name\nzone");
}

TEST_F(MmdsStoreTest, PathsAreJsonPointers) {
  PutDocument();
  // Runs of '/' are one, the absolute form is the same path.
  ExpectText(Get("//vm///name"), 200, "web-1");
  ExpectText(Get("http://169.254.169.254/vm/name"), 200, "web-1");
  // RFC 6901 escapes: "~1" is '/', "~0" is '~'.
  ExpectText(Get("/a~1b/m~0n"), 200, "escaped");
  // Array indices: no sign, no leading zero, in range.
  for (const char* missing : {"/tags/2", "/tags/01", "/tags/+1", "/tags/-1",
                              "/vm/x", "/vm/name/more", "/fcvm/plan"}) {
    ExpectText(Get(missing), 404,
               absl::StrCat("Resource not found: ", missing, "."));
  }
  // The message names the path as sent.
  ExpectText(Get("//no//such"), 404, "Resource not found: //no//such.");
}

TEST_F(MmdsStoreTest, BeforeAnyPutTheRootIsNullAndNothingElseExists) {
  token_ = Token();
  ExpectText(Get("/fcvm/plan"), 404, "Resource not found: /fcvm/plan.");
  ExpectAnswer(GetJson("/"), 200, "application/json", "null");
  ExpectText(Get("/"), 501, kUnsupported);
}

TEST_F(MmdsStoreTest, RequestsOutsideMmdsRules) {
  for (const char* method : {"POST", "PATCH", "DELETE", "HEAD"}) {
    MmdsAnswer answer = store_.Answer(method, "/", {});
    ExpectText(answer, 405, "Not allowed HTTP method.");
    EXPECT_THAT(answer.headers, ElementsAre(Pair("Allow", "GET, PUT")));
  }
  for (const char* target : {"name", "http://169.254.169.254", "http://", ""}) {
    ExpectText(store_.Answer("GET", target, {}), 400, "Invalid URI.");
  }
}

// The document the runner writes, read back as the agent reads it.
TEST_F(MmdsStoreTest, TheRunnersPlanDocument) {
  ASSERT_TRUE(
      store_.Put(R"({"fcvm":{"plan":{"image":"nginx","generation":"2"}}})")
          .ok());
  token_ = Token();
  ExpectAnswer(GetJson("/fcvm/plan"), 200, "application/json",
               R"({"generation":"2","image":"nginx"})");
  // Without Accept: the keys, which is not a plan.
  ExpectText(Get("/fcvm/plan"), 200, "generation\nimage");
  ExpectText(Get("/fcvm"), 200, "plan/");
  // A PATCH that raises the generation, as after a restore.
  ASSERT_TRUE(store_.Patch(R"({"fcvm":{"plan":{"generation":"3"}}})").ok());
  ExpectAnswer(GetJson("/fcvm/plan"), 200, "application/json",
               R"({"generation":"3","image":"nginx"})");
}

}  // namespace
}  // namespace fcvm::agent::testing
