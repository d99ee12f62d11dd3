// The control plane over a real state store in a temporary directory. A
// VM counts as live while its lease is held: by this process for list and
// get; for kill, by a forked owner that, like a supervisor, records itself
// and on SIGTERM writes EXITED and exits.
#include "runner/api/control_plane.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/state/lease.h"
#include "runner/state/process.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::api {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "e2b_0000000000000000000000000000000000000000";

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    store_.emplace(
        absl::StrCat(std::getenv("TEST_TMPDIR"), "/store", ++counter));
    auto keys = ApiKeys::FromList({kKey}, "test");
    ASSERT_TRUE(keys.ok());
    plane_.emplace(*store_, *keys, AccessTokens::FromKey(std::string(32, 'k')),
                   CreateOptions(),
                   [this](const std::string& line) { log_.push_back(line); });
  }
  void TearDown() override {
    for (pid_t pid : children_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }

  VmState New(const std::string& name, VmState::Phase phase, int64_t created) {
    VmState state;
    state.set_name(name);
    state.set_id("00000000000000aa");
    state.set_phase(phase);
    state.set_image("busybox-httpd");
    state.set_created_unix_ms(created);
    state.mutable_spec()->set_vcpus(2);
    state.mutable_spec()->set_memory_mib(512);
    state.mutable_network()->set_mode("user");
    return state;
  }
  // A VM whose lease this process holds (live while the test runs).
  void Live(const std::string& name, VmState::Phase phase, int64_t created) {
    VmState state = New(name, phase, created);
    auto lease = store_->Create(state);
    ASSERT_TRUE(lease.ok()) << lease.status();
    leases_.push_back(std::move(*lease));
  }
  // A VM owned by a forked stand-in supervisor that ends on SIGTERM.
  void Owned(const std::string& name) {
    VmState state = New(name, VmState::RUNNING, 1000);
    auto lease = store_->Create(state);
    ASSERT_TRUE(lease.ok()) << lease.status();
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    if (child == 0) {
      sigprocmask(SIG_BLOCK, &term, nullptr);
      StateStore mine(store_->root());
      const uint64_t ticks = StartTicks(getpid());
      if (!mine.Update(name,
                       [&](VmState& s) {
                         s.set_supervisor_pid(getpid());
                         s.set_supervisor_start_ticks(ticks);
                       })
               .ok()) {
        _exit(3);
      }
      (void)!write(ready[1], "x", 1);
      int signal = 0;
      sigwait(&term, &signal);
      (void)mine.Update(name, [](VmState& s) {
        s.set_phase(VmState::EXITED);
        s.set_supervisor_pid(0);
      });
      _exit(0);
    }
    // The child holds the lock through its copy of the descriptor; ours
    // closes when `lease` goes.
    close(ready[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    children_.push_back(child);
  }

  Response Call(const std::string& method, const std::string& path,
                std::vector<std::pair<std::string, std::string>> query = {},
                std::optional<std::string> key = kKey,
                const std::string& body = "") {
    Request request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.query = std::move(query);
    request.peer = "test";
    if (key) request.headers.emplace_back("x-api-key", *key);
    return plane_->Handle(request);
  }
  static google::protobuf::Value Parse(const Response& response) {
    google::protobuf::Value value;
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(response.body, &value).ok())
        << response.body;
    return value;
  }
  static std::string Header(const Response& response, const std::string& name) {
    for (const auto& [k, v] : response.headers) {
      if (k == name) return v;
    }
    return "";
  }

  std::optional<StateStore> store_;
  std::optional<ControlPlane> plane_;
  std::vector<Lease> leases_;
  std::vector<pid_t> children_;
  std::vector<std::string> log_;
};

TEST_F(ControlPlaneTest, EveryCallNeedsAKnownKey) {
  Response missing = Call("GET", "/v2/sandboxes", {}, std::nullopt);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(Parse(missing).struct_value().fields().at("code").number_value(),
            401);
  EXPECT_THAT(missing.body, HasSubstr("X-API-KEY"));
  Response wrong = Call("GET", "/v2/sandboxes", {}, "e2b_1111111111111111");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_THAT(wrong.body, HasSubstr("invalid API key"));
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_THAT(log_[0], HasSubstr("refused an unknown API key"));
}

TEST_F(ControlPlaneTest, ListsLiveVmsAsE2bSandboxesInCreationOrder) {
  Live("web-2", VmState::RUNNING, 2000);
  Live("web-1", VmState::RUNNING, 1000);
  Live("held", VmState::PAUSED, 3000);
  {
    VmState gone = New("gone", VmState::EXITED, 500);
    ASSERT_TRUE(store_->Create(gone).ok());
  }
  Response list = Call("GET", "/v2/sandboxes");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Header(list, "Content-Type"), "application/json");
  const auto values = Parse(list).list_value().values();
  ASSERT_EQ(values.size(), 3) << list.body;
  const auto& first = values[0].struct_value().fields();
  EXPECT_EQ(first.at("sandboxID").string_value(), "web-1");
  EXPECT_EQ(first.at("templateID").string_value(), "busybox-httpd");
  EXPECT_EQ(first.at("clientID").string_value(), "fcvm");
  EXPECT_EQ(first.at("state").string_value(), "running");
  EXPECT_EQ(first.at("cpuCount").number_value(), 2);
  EXPECT_EQ(first.at("memoryMB").number_value(), 512);
  EXPECT_EQ(first.at("envdVersion").string_value(), kEnvdVersion);
  EXPECT_EQ(first.at("startedAt").string_value(), "1970-01-01T00:00:01Z");
  EXPECT_EQ(values[1].struct_value().fields().at("sandboxID").string_value(),
            "web-2");
  EXPECT_EQ(values[2].struct_value().fields().at("state").string_value(),
            "paused");
  EXPECT_EQ(Header(list, "X-Next-Token"), "");
  // The first generation's route answers the same.
  EXPECT_EQ(Call("GET", "/sandboxes").body, list.body);

  Response paused = Call("GET", "/v2/sandboxes", {{"state", "paused"}});
  ASSERT_EQ(Parse(paused).list_value().values_size(), 1);
  Response bad = Call("GET", "/v2/sandboxes", {{"state", "dead"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("state dead"));
}

TEST_F(ControlPlaneTest, PagesWithNextToken) {
  for (int i = 0; i < 5; ++i) {
    Live(absl::StrCat("vm-", i), VmState::RUNNING, 1000 + i);
  }
  std::vector<std::string> seen;
  std::vector<std::pair<std::string, std::string>> query = {{"limit", "2"}};
  for (int page = 0; page < 5; ++page) {
    Response r = Call("GET", "/v2/sandboxes", query);
    ASSERT_EQ(r.status, 200) << r.body;
    const google::protobuf::Value parsed = Parse(r);
    for (const auto& v : parsed.list_value().values()) {
      seen.push_back(v.struct_value().fields().at("sandboxID").string_value());
    }
    const std::string next = Header(r, "X-Next-Token");
    if (next.empty()) break;
    query = {{"limit", "2"}, {"nextToken", next}};
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre("vm-0", "vm-1", "vm-2", "vm-3", "vm-4"));
  EXPECT_EQ(Call("GET", "/v2/sandboxes", {{"limit", "0"}}).status, 400);
  EXPECT_EQ(Call("GET", "/v2/sandboxes", {{"limit", "x"}}).status, 400);
}

TEST_F(ControlPlaneTest, GetGivesTheDetailOr404WithCode) {
  Live("web", VmState::RUNNING, 1000);
  Response got = Call("GET", "/sandboxes/web");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Parse(got).struct_value().fields().at("sandboxID").string_value(),
            "web");
  Response missing = Call("GET", "/sandboxes/nope");
  EXPECT_EQ(missing.status, 404);
  // The JS SDK reads the code from the body, not the status.
  EXPECT_EQ(Parse(missing).struct_value().fields().at("code").number_value(),
            404);
  EXPECT_THAT(missing.body, HasSubstr("sandbox nope not found"));
}

TEST_F(ControlPlaneTest, KillStopsAndRemovesTheVmThenAnswers404) {
  Owned("doomed");
  Response killed = Call("DELETE", "/sandboxes/doomed");
  EXPECT_EQ(killed.status, 204) << killed.body;
  EXPECT_FALSE(store_->Read("doomed").ok());  // Gone from `fcvm ls` too.
  Response again = Call("DELETE", "/sandboxes/doomed");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(Parse(again).struct_value().fields().at("code").number_value(),
            404);
}

// What create asks `fcvm run` for, read from the argv it ran; and how a
// refused run is told. (A created VM: //tests/runner:api_test.)
TEST_F(ControlPlaneTest, CreateRunsFcvmRunDetachedWithTheSandboxsFlags) {
  const std::string argv_file =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/argv");
  CreateOptions create;
  create.fcvm_argv = {"/bin/sh", "-c",
                      "printf '%s\\n' \"$@\" > " + argv_file +
                          "; echo 'fcvm: no image named nope' >&2; exit 1",
                      "fcvm"};
  create.base_template = "busybox-httpd";
  plane_.emplace(*store_, *ApiKeys::FromList({kKey}, "test"),
                 AccessTokens::FromKey(std::string(32, 'k')), create,
                 [this](const std::string& line) { log_.push_back(line); });
  Response r = Call("POST", "/v2/sandboxes", {}, kKey,
                    R"({"templateID":"base","timeout":30,"metadata":{"a":"1"},)"
                    R"("envVars":{"GREETING":"hi there"},"newField":true})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("no image named nope"));
  const std::string argv = *ReadFile(argv_file);
  EXPECT_THAT(argv, HasSubstr("run\n--detach\n--rm\n--name\nsbx-"));
  EXPECT_THAT(argv, HasSubstr("\n--timeout=30\n--api-template=base\n"
                              "--label=a=1\n--env=GREETING=hi there\n"
                              "busybox-httpd\n"));
  // The unknown field was ignored and said once.
  int said = 0;
  for (const std::string& line : log_) {
    said += absl::StrContains(line, "newField") ? 1 : 0;
  }
  EXPECT_EQ(said, 1);
  (void)Call("POST", "/sandboxes", {}, kKey,
             R"({"templateID":"x","newField":1})");
  said = 0;
  for (const std::string& line : log_) {
    said += absl::StrContains(line, "newField") ? 1 : 0;
  }
  EXPECT_EQ(said, 1);
  // Bad requests never reach fcvm run.
  for (const std::string& body :
       {std::string("{"), std::string(R"({"templateID":""})"),
        std::string(R"({"templateID":"base","timeout":0})"),
        std::string(R"({"templateID":"--privileged"})"),
        std::string(R"({"templateID":"base","timeout":"soon"})"),
        std::string(R"({"templateID":"base","envVars":{"A-B":"x"}})"),
        std::string(R"({"templateID":"base","metadata":{"a=b":"x"}})")}) {
    Response bad = Call("POST", "/v2/sandboxes", {}, kKey, body);
    EXPECT_EQ(bad.status, 400) << body << " -> " << bad.body;
    EXPECT_EQ(Parse(bad).struct_value().fields().at("code").number_value(),
              400);
  }
}

TEST_F(ControlPlaneTest, ConnectAnswersTheSandboxWithItsDerivedToken) {
  VmState state = New("web", VmState::RUNNING, 1000);
  state.set_api_template("base");
  (*state.mutable_labels())["purpose"] = "test";
  state.set_expires_unix_ms(absl::ToUnixMillis(absl::Now()) + 600'000);
  auto lease = store_->Create(state);
  ASSERT_TRUE(lease.ok());
  Response r = Call("POST", "/v2/sandboxes/web/connect", {}, kKey, "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  const google::protobuf::Value parsed = Parse(r);
  const auto& fields = parsed.struct_value().fields();
  EXPECT_EQ(fields.at("sandboxID").string_value(), "web");
  EXPECT_EQ(fields.at("templateID").string_value(), "base");
  EXPECT_EQ(fields.at("envdAccessToken").string_value(),
            AccessTokens::FromKey(std::string(32, 'k'))
                .For("web", "00000000000000aa"));
  Response info = Call("GET", "/sandboxes/web");
  const google::protobuf::Value parsed_info = Parse(info);
  const auto& detail = parsed_info.struct_value().fields();
  EXPECT_EQ(detail.at("metadata")
                .struct_value()
                .fields()
                .at("purpose")
                .string_value(),
            "test");
  EXPECT_FALSE(detail.at("endAt").string_value().empty());
  // Moving its end needs its supervisor: none listens here.
  Response moved =
      Call("POST", "/sandboxes/web/timeout", {}, kKey, R"({"timeout":60})");
  EXPECT_EQ(moved.status, 409) << moved.body;
  EXPECT_EQ(
      Call("POST", "/sandboxes/web/timeout", {}, kKey, R"({"timeout":-1})")
          .status,
      400);
  EXPECT_EQ(
      Call("POST", "/sandboxes/gone/timeout", {}, kKey, R"({"timeout":60})")
          .status,
      404);
  EXPECT_EQ(Call("POST", "/sandboxes/gone/connect", {}, kKey, "{}").status,
            404);
}

TEST_F(ControlPlaneTest, RoutesNotServedYetSay501AndUnknownOnes404) {
  Live("web", VmState::RUNNING, 1000);
  EXPECT_THAT(
      Call("POST", "/v2/sandboxes", {}, kKey, R"({"templateID":"x"})").body,
      HasSubstr("cannot create"));
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"POST", "/sandboxes/web/pause"},
           {"GET", "/sandboxes/web/metrics"}}) {
    Response r = Call(method, path);
    EXPECT_EQ(r.status, 501) << method << " " << path;
    EXPECT_EQ(Parse(r).struct_value().fields().at("code").number_value(), 501);
    EXPECT_THAT(r.body, HasSubstr("not served by fcvm api yet"));
  }
  EXPECT_EQ(Call("GET", "/nothing").status, 404);
  EXPECT_EQ(Call("PUT", "/v2/sandboxes").status, 405);
  EXPECT_EQ(Call("PATCH", "/sandboxes/web").status, 405);
}

}  // namespace
}  // namespace fcvm::runner::api
