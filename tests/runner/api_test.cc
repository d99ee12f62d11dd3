// `fcvm api`'s control plane against a real VM (QEMU, the host's CPU,
// user-mode networking) and a real server on loopback: a VM started with
// `fcvm run -d` is listed and described as an E2B sandbox; a kill through
// the API stops and removes it (gone from `fcvm ls`), a second kill is
// {"code":404}; a request without a key or with a wrong one is 401; the
// server stops on SIGTERM.
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/http_client.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/vmm/kvm.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "e2b_0000000000000000000000000000000000000000";

class ApiTest : public FcvmTest {
 protected:
  absl::StatusOr<agent::HttpResponse> Call(const std::string& method,
                                           const std::string& path,
                                           bool with_key = true,
                                           const std::string& key = kKey) {
    agent::HttpRequest request;
    request.method = method;
    request.path = path;
    request.headers.emplace_back("Host", "127.0.0.1");
    request.headers.emplace_back("Connection", "close");
    if (with_key) request.headers.emplace_back("X-API-KEY", key);
    return agent::HttpCall({"127.0.0.1", api_port_}, request,
                           absl::Seconds(60));
  }
  static google::protobuf::Value Parse(const std::string& json) {
    google::protobuf::Value value;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &value).ok())
        << json;
    return value;
  }
  uint16_t api_port_ = 0;
};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ApiTest);

TEST_P(ApiTest, ListsGetsAndKillsACliVmAsAnE2bSandbox) {
  Result run =
      Exec(Run({"-d", "--name", "web", "busybox-httpd"}), absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("web"));

  const std::string keys =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/api-keys");
  ASSERT_TRUE(
      WriteFileAtomically(keys, absl::StrCat("# test\n", kKey, "\n"), 0600)
          .ok());
  api_port_ = FreePort();
  SubprocessOptions options;
  options.argv = {g_programs.fcvm,   "api",
                  "--api-listen",    absl::StrCat("127.0.0.1:", api_port_),
                  "--api-keys-file", keys};
  options.stderr_mode = StdioMode::kInherit;  // In the test log.
  absl::StatusOr<Subprocess> server = Subprocess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    listening =
        agent::ProbeTcp({"127.0.0.1", api_port_}, absl::Seconds(1)).ok();
    if (!listening) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(listening) << "fcvm api did not listen on port " << api_port_;

  auto unauthenticated = Call("GET", "/v2/sandboxes", false);
  ASSERT_TRUE(unauthenticated.ok()) << unauthenticated.status();
  EXPECT_EQ(unauthenticated->status, 401);
  EXPECT_EQ(Parse(unauthenticated->body)
                .struct_value()
                .fields()
                .at("code")
                .number_value(),
            401);
  auto wrong = Call("GET", "/v2/sandboxes", true, "e2b_not_this_one_at_all");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);

  auto list = Call("GET", "/v2/sandboxes");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_EQ(list->Header("content-type"), "application/json");
  const auto values = Parse(list->body).list_value().values();
  ASSERT_EQ(values.size(), 1) << list->body;
  const auto& web = values[0].struct_value().fields();
  EXPECT_EQ(web.at("sandboxID").string_value(), "web");
  EXPECT_EQ(web.at("templateID").string_value(), "busybox-httpd");
  EXPECT_EQ(web.at("state").string_value(), "running");
  EXPECT_GT(web.at("memoryMB").number_value(), 0);

  auto detail = Call("GET", "/sandboxes/web");
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail->status, 200) << detail->body;
  EXPECT_THAT(detail->body, HasSubstr(R"("sandboxID":"web")"));

  auto killed = Call("DELETE", "/sandboxes/web");
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->status, 204) << killed->body;
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ::testing::IsEmpty());  // Gone from `fcvm ls` too.
  auto again = Call("DELETE", "/sandboxes/web");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 404);
  EXPECT_EQ(
      Parse(again->body).struct_value().fields().at("code").number_value(),
      404);
  auto empty = Call("GET", "/v2/sandboxes");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->body, "[]");

  ASSERT_TRUE(server->Signal(SIGTERM).ok());
  absl::StatusOr<ExitStatus> exit = server->Wait();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString();
}

INSTANTIATE_TEST_SUITE_P(Host, ApiTest, ::testing::ValuesIn(HostQemuTargets()),
                         TargetName);

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
