// The E2B documents through protobuf's JSON mapping: the exact bodies the
// SDK 2.51.0 sends parse (../shared/notes/e2b-compat.md §2, §3.3, §3.6),
// and what we write is what the SDK reads.

#include <string>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "runner/api/e2b/api.pb.h"
#include "runner/api/e2b/filesystem.pb.h"
#include "runner/api/e2b/process.pb.h"

namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

template <typename M>
M Parse(const std::string& json, bool ignore_unknown = false) {
  M message;
  JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown;
  const auto status = JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(status.ok()) << status << " in " << json;
  return message;
}

template <typename M>
std::string Print(const M& message) {
  std::string json;
  EXPECT_TRUE(MessageToJsonString(message, &json).ok());
  return json;
}

TEST(Process, TheSdksStartRequestParses) {
  const auto start = Parse<process::StartRequest>(
      R"({"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi; echo oops >&2"]},"stdin":false})");
  EXPECT_EQ(start.process().cmd(), "/bin/bash");
  ASSERT_EQ(start.process().args_size(), 3);
  EXPECT_EQ(start.process().args(2), "echo hi; echo oops >&2");
  EXPECT_TRUE(start.has_stdin());
  EXPECT_FALSE(start.stdin());
  EXPECT_FALSE(start.process().has_cwd());

  const auto with_env = Parse<process::StartRequest>(
      R"({"process":{"cmd":"/bin/bash","args":["-l","-c","env"],"envs":{"A":"1"},"cwd":"/tmp"},"stdin":true})");
  EXPECT_EQ(with_env.process().envs().at("A"), "1");
  EXPECT_EQ(with_env.process().cwd(), "/tmp");
}

TEST(Process, SignalsAndInputAsTheSdkSendsThem) {
  const auto kill = Parse<process::SendSignalRequest>(
      R"({"process":{"pid":1000},"signal":"SIGNAL_SIGKILL"})");
  EXPECT_EQ(kill.process().pid(), 1000u);
  EXPECT_EQ(kill.signal(), process::SIGNAL_SIGKILL);
  const auto input = Parse<process::SendInputRequest>(
      R"({"process":{"pid":1001},"input":{"stdin":"aGVsbG8K"}})");
  EXPECT_EQ(input.input().stdin(), "hello\n");
  const auto by_tag =
      Parse<process::ConnectRequest>(R"({"process":{"tag":"srv"}})");
  EXPECT_EQ(by_tag.process().tag(), "srv");
}

TEST(Process, EventsAreWrittenAsCaptured) {
  process::StartResponse start;
  start.mutable_event()->mutable_start()->set_pid(1000);
  EXPECT_EQ(Print(start), R"({"event":{"start":{"pid":1000}}})");
  process::StartResponse data;
  data.mutable_event()->mutable_data()->set_stdout("hi\n");
  EXPECT_EQ(Print(data), R"({"event":{"data":{"stdout":"aGkK"}}})");
  process::StartResponse end;
  auto* e = end.mutable_event()->mutable_end();
  e->set_exit_code(2);
  e->set_exited(true);
  e->set_status("exit status 2");
  e->set_error("exit status 2");
  EXPECT_EQ(
      Print(end),
      R"({"event":{"end":{"exitCode":2,"exited":true,"status":"exit status 2","error":"exit status 2"}}})");
  process::StartResponse keepalive;
  keepalive.mutable_event()->mutable_keepalive();
  EXPECT_EQ(Print(keepalive), R"({"event":{"keepalive":{}}})");
}

TEST(Filesystem, ListDirWithAFieldFromANewerSdkParsesWhenUnknownsAreIgnored) {
  filesystem::ListDirRequest strict;
  const std::string newer =
      R"({"path":"/home/user","depth":1,"followSymlinks":true})";
  EXPECT_FALSE(JsonStringToMessage(newer, &strict).ok());
  const auto list = Parse<filesystem::ListDirRequest>(newer, true);
  EXPECT_EQ(list.path(), "/home/user");
  EXPECT_EQ(list.depth(), 1u);
}

TEST(Filesystem, EntryInfoIsWrittenAsTheSdkReadsIt) {
  filesystem::StatResponse stat;
  auto* entry = stat.mutable_entry();
  entry->set_name("hello.txt");
  entry->set_type(filesystem::FILE_TYPE_FILE);
  entry->set_path("/home/user/hello.txt");
  entry->set_size(12);
  entry->set_mode(0644);
  entry->set_permissions("-rw-r--r--");
  entry->set_owner("user");
  entry->set_group("user");
  *entry->mutable_modified_time() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1767225600);
  EXPECT_EQ(
      Print(stat),
      R"({"entry":{"name":"hello.txt","type":"FILE_TYPE_FILE","path":"/home/user/hello.txt","size":"12","mode":420,"permissions":"-rw-r--r--","owner":"user","group":"user","modifiedTime":"2026-01-01T00:00:00Z"}})");
}

TEST(ControlPlane, NewSandboxFromBothSdkGenerations) {
  // JS 2.51.0 (POST /v2/sandboxes): no timeout unless asked.
  const auto js = Parse<fcvm::runner::api::e2b::NewSandbox>(
      R"({"templateID":"base","metadata":{"purpose":"compat-test"},"envVars":{"A":"1"}})");
  EXPECT_EQ(js.template_id(), "base");
  EXPECT_FALSE(js.has_timeout());
  EXPECT_EQ(js.metadata().at("purpose"), "compat-test");
  EXPECT_EQ(js.env_vars().at("A"), "1");
  // Python 2.45.1 (POST /sandboxes): always a timeout, plus its own fields.
  const auto py = Parse<fcvm::runner::api::e2b::NewSandbox>(
      R"({"templateID":"base","timeout":300,"secure":true,"allow_internet_access":true})");
  EXPECT_EQ(py.timeout(), 300);
  EXPECT_TRUE(py.secure());
}

TEST(ControlPlane, SandboxAndErrorAreWrittenWithE2bsNames) {
  fcvm::runner::api::e2b::Sandbox sandbox;
  sandbox.set_template_id("base");
  sandbox.set_sandbox_id("i2a");
  sandbox.set_alias("base");
  sandbox.set_client_id("local");
  sandbox.set_envd_version("0.5.7");
  sandbox.set_envd_access_token("99ca");
  EXPECT_EQ(
      Print(sandbox),
      R"({"templateID":"base","sandboxID":"i2a","alias":"base","clientID":"local","envdVersion":"0.5.7","envdAccessToken":"99ca"})");
  fcvm::runner::api::e2b::ListedSandbox listed;
  listed.set_memory_mb(512);
  listed.set_disk_size_mb(1024);
  *listed.mutable_started_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1767225600);
  EXPECT_EQ(
      Print(listed),
      R"({"startedAt":"2026-01-01T00:00:00Z","memoryMB":512,"diskSizeMB":1024})");
  fcvm::runner::api::e2b::Error error;
  error.set_code(404);
  error.set_message("sandbox x not found");
  EXPECT_EQ(Print(error), R"({"code":404,"message":"sandbox x not found"})");
}

}  // namespace
