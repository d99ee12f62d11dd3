#include "runner/api/control_plane.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "runner/api/e2b/api.pb.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vm/control.h"
#include "runner/vm/listing.h"
#include "runner/vm/remove.h"

namespace fcvm::runner::api {
namespace {

using google::protobuf::util::MessageToJsonString;
using google::protobuf::util::TimeUtil;

constexpr char kClientId[] = "fcvm";
constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;

// Every field printed, defaults included: the Python SDK requires fields
// (diskSizeMB, ...) that proto3 would leave out when zero.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!MessageToJsonString(message, &json, options).ok()) {
    return absl::InternalError("could not write the answer as JSON");
  }
  return json;
}

Response Json(int status, const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = ToJson(message);
  if (!json.ok()) return E2bError(500, std::string(json.status().message()));
  return Response::Bytes(status, "application/json", std::move(*json));
}

// The bare JSON array E2B answers a list with: the value of
// ListedSandboxes' one field, cut from protobuf's printing of it (so the
// elements keep their field order, which a google.protobuf.ListValue of
// Structs would not).
Response JsonArray(const std::vector<e2b::ListedSandbox>& sandboxes) {
  e2b::ListedSandboxes list;
  for (const auto& sandbox : sandboxes) *list.add_sandboxes() = sandbox;
  absl::StatusOr<std::string> json = ToJson(list);
  constexpr absl::string_view kPrefix = "{\"sandboxes\":";
  if (!json.ok() || !absl::StartsWith(*json, kPrefix) ||
      !absl::EndsWith(*json, "}")) {
    return E2bError(500, "could not write the list as JSON");
  }
  return Response::Bytes(
      200, "application/json",
      json->substr(kPrefix.size(), json->size() - kPrefix.size() - 1));
}

// "running", "paused", or "" for a VM that is not a live sandbox.
std::string SandboxState(const ListedVm& vm) {
  if (!vm.owner_alive || !vm.entry.state.ok()) return "";
  switch (vm.entry.state->phase()) {
    case VmState::BOOTING:
    case VmState::RUNNING:
      return "running";
    case VmState::PAUSED:
      return "paused";
    default:
      return "";
  }
}

// The template a sandbox was asked for (the image for a VM `fcvm run`
// started).
const std::string& TemplateOf(const VmState& state) {
  return state.api_template().empty() ? state.image() : state.api_template();
}

template <typename M>
void Describe(const VmState& state, const std::string& sandbox_state, M* out) {
  out->set_sandbox_id(state.name());
  out->set_template_id(TemplateOf(state));
  out->set_alias(TemplateOf(state));
  if (state.expires_unix_ms() > 0) {
    *out->mutable_end_at() =
        TimeUtil::MillisecondsToTimestamp(state.expires_unix_ms());
  }
  for (const auto& [key, value] : state.labels()) {
    (*out->mutable_metadata())[key] = value;
  }
  out->set_client_id(kClientId);
  *out->mutable_started_at() =
      TimeUtil::MillisecondsToTimestamp(state.created_unix_ms());
  out->set_cpu_count(static_cast<int32_t>(state.spec().vcpus()));
  out->set_memory_mb(static_cast<int32_t>(state.spec().memory_mib()));
  struct stat st;
  if (!state.disk().empty() && stat(state.disk().c_str(), &st) == 0) {
    out->set_disk_size_mb(static_cast<int32_t>(st.st_size >> 20));
  }
  out->set_state(sandbox_state);
  out->set_envd_version(kEnvdVersion);
}

// The live sandbox named `id`, or nullptr.
const ListedVm* FindLive(const std::vector<ListedVm>& vms,
                         const std::string& id) {
  for (const ListedVm& vm : vms) {
    if (vm.entry.name == id && !SandboxState(vm).empty()) return &vm;
  }
  return nullptr;
}

Response NotFound(const std::string& id) {
  return E2bError(404, absl::StrCat("sandbox ", id, " not found"));
}

Response NoContent() {
  Response response;
  response.status = 204;
  return response;
}

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

// The last lines a failed `fcvm run` said (its own words name the cause).
std::string LastWords(const std::string& text) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipWhitespace());
  std::vector<absl::string_view> last(
      lines.end() - std::min<size_t>(lines.size(), 3), lines.end());
  return absl::StrJoin(last, "; ");
}

}  // namespace

Response E2bError(int status, const std::string& message) {
  e2b::Error error;
  error.set_code(status);
  error.set_message(message);
  std::string json;
  (void)MessageToJsonString(error, &json);  // Two scalars always print.
  return Response::Bytes(status, "application/json", std::move(json));
}

Response ControlPlane::Handle(const Request& request) {
  const std::string* key = request.Header("x-api-key");
  if (key == nullptr) {
    return E2bError(401,
                    "missing X-API-KEY (set E2B_API_KEY to a key of "
                    "fcvm api's --api-keys-file)");
  }
  if (!keys_.Accepts(*key)) {
    log_(absl::StrCat(request.peer, " ", request.method, " ", request.path,
                      ": refused an unknown API key"));
    return E2bError(401, "invalid API key");
  }
  absl::string_view path = request.path;
  const bool v2 = absl::ConsumePrefix(&path, "/v2");
  if (path == "/sandboxes") {
    if (request.method == "GET") return List(request);
    if (request.method == "POST") return Create(request);
    return E2bError(405, absl::StrCat(request.method, " ", request.path,
                                      ": not a method of this route"));
  }
  if (absl::ConsumePrefix(&path, "/sandboxes/")) {
    const std::vector<std::string> parts = absl::StrSplit(path, '/');
    const std::string& id = parts[0];
    if (parts.size() == 1 && !v2) {
      if (request.method == "GET") return Get(id);
      if (request.method == "DELETE") return Kill(id);
      return E2bError(405, absl::StrCat(request.method, " ", request.path,
                                        ": not a method of this route"));
    }
    if (parts.size() == 2 && !id.empty() && request.method == "POST") {
      if (parts[1] == "timeout" && !v2) return SetTimeout(request, id);
      if (parts[1] == "connect") return Connect(request, id);
    }
    if (parts.size() == 2 && !id.empty()) {
      static const std::set<std::string>* later = new std::set<std::string>{
          "pause", "resume",  "metrics",   "snapshots",
          "fork",  "network", "refreshes", "logs"};
      if (later->count(parts[1]) != 0) {
        return E2bError(501, absl::StrCat(request.method, " ", request.path,
                                          " is not served by fcvm api yet"));
      }
    }
  }
  return E2bError(404,
                  absl::StrCat("no route ", request.method, " ", request.path));
}

std::optional<Response> ControlPlane::ParseBody(
    const Request& request, google::protobuf::Message* message) {
  const std::string body = request.body.empty() ? "{}" : request.body;
  google::protobuf::util::JsonParseOptions strict;
  if (google::protobuf::util::JsonStringToMessage(body, message, strict).ok()) {
    return std::nullopt;
  }
  google::protobuf::util::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  message->Clear();
  const google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(body, message, lenient);
  if (!parsed.ok()) {
    return E2bError(400, absl::StrCat(request.method, " ", request.path,
                                      ": the body is not a ",
                                      message->GetDescriptor()->name(), ": ",
                                      parsed.message().as_string()));
  }
  // Fields of a newer SDK: ignored, as E2B's server does; said once.
  std::unique_ptr<google::protobuf::Message> scratch(message->New());
  const google::protobuf::util::Status strict_error =
      google::protobuf::util::JsonStringToMessage(body, scratch.get(), strict);
  absl::MutexLock lock(&logged_mu_);
  const std::string what = absl::StrCat(message->GetDescriptor()->name(), ": ",
                                        strict_error.message().as_string());
  if (logged_.size() < 100 && logged_.insert(what).second) {
    log_(absl::StrCat("ignored (logged once): ", what));
  }
  return std::nullopt;
}

absl::Status ControlPlane::MoveEnd(const VmState& state, int64_t seconds) {
  ControlRequest request;
  request.mutable_set_timeout()->set_expires_unix_ms(
      absl::ToUnixMillis(absl::Now()) + 1000 * seconds);
  ASSIGN_OR_RETURN(ControlReply reply, SendControl(state.dir(), request));
  if (!reply.ok()) return absl::FailedPreconditionError(reply.error());
  return absl::OkStatus();
}

Response ControlPlane::Create(const Request& request) {
  e2b::NewSandbox asked;
  if (std::optional<Response> bad = ParseBody(request, &asked)) {
    return std::move(*bad);
  }
  if (create_.fcvm_argv.empty()) {
    return E2bError(501, "this server cannot create sandboxes");
  }
  if (absl::StartsWith(asked.template_id(), "-")) {
    return E2bError(400, absl::StrCat("templateID '", asked.template_id(),
                                      "': not a template or image name"));
  }
  if (asked.template_id().empty()) {
    return E2bError(400,
                    "templateID: required (\"base\" is fcvm api's "
                    "--base-template)");
  }
  const int timeout =
      asked.has_timeout() ? asked.timeout() : create_.default_timeout_seconds;
  if (timeout < 1 || timeout > create_.max_timeout_seconds) {
    return E2bError(400, absl::StrCat("timeout ", timeout, ": from 1 to ",
                                      create_.max_timeout_seconds, " seconds"));
  }
  const std::string target = asked.template_id() == "base"
                                 ? create_.base_template
                                 : asked.template_id();
  absl::StatusOr<std::string> random = MintAccessToken();
  if (!random.ok())
    return E2bError(500, std::string(random.status().message()));
  const std::string id = absl::StrCat("sbx-", random->substr(0, 12));
  std::vector<std::string> argv = create_.fcvm_argv;
  for (const char* word : {"run", "--detach", "--rm", "--name"}) {
    argv.push_back(word);
  }
  argv.push_back(id);
  argv.push_back(absl::StrCat("--timeout=", timeout));
  argv.push_back(absl::StrCat("--api-template=", asked.template_id()));
  for (const auto& [key, value] : asked.metadata()) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return E2bError(
          400, absl::StrCat("metadata key '", key, "': not empty, no '='"));
    }
    argv.push_back(absl::StrCat("--label=", key, "=", value));
  }
  const bool is_template = SnapshotStore(store_.root()).Read(target).ok();
  for (const auto& [name, value] : asked.env_vars()) {
    if (!IsEnvName(name)) {
      return E2bError(
          400, absl::StrCat("envVars: '", name, "' is not a variable name"));
    }
    if (is_template) {
      return E2bError(400, absl::StrCat("envVars: template ", target,
                                        " fixes its environment (put them in "
                                        "the template)"));
    }
    argv.push_back(absl::StrCat("--env=", name, "=", value));
  }
  if (is_template) {
    argv.push_back(absl::StrCat("--template=", target));
  } else {
    argv.push_back(target);
  }
  SubprocessOptions options;
  options.argv = argv;
  options.stdout_mode = options.stderr_mode = StdioMode::kPipe;
  const absl::Time started = absl::Now();
  absl::StatusOr<Subprocess> run = Subprocess::Start(std::move(options));
  absl::StatusOr<Subprocess::Output> out =
      run.ok() ? run->Communicate("", create_.start_timeout)
               : absl::StatusOr<Subprocess::Output>(run.status());
  if (!out.ok()) {
    return E2bError(500, absl::StrCat("sandbox ", id, " (", target,
                                      "): ", out.status().message()));
  }
  if (!out->exit.success()) {
    log_(absl::StrCat("create ", id, " (", target,
                      ") failed: ", out->stderr_data));
    // 1 and 2: fcvm run refused (an unknown image, a bad flag): the
    // request's fault; 125: the VM failed.
    const int code = out->exit.code == 1 || out->exit.code == 2 ? 400 : 500;
    return E2bError(code, absl::StrCat("sandbox ", id, " (", target,
                                       "): ", LastWords(out->stderr_data)));
  }
  absl::StatusOr<VmState> state = store_.Read(id);
  if (!state.ok()) return E2bError(500, std::string(state.status().message()));
  log_(absl::StrCat("created sandbox ", id, " (", target, ") in ",
                    absl::FormatDuration(absl::Trunc(absl::Now() - started,
                                                     absl::Milliseconds(1)))));
  e2b::Sandbox sandbox;
  sandbox.set_template_id(asked.template_id());
  sandbox.set_sandbox_id(id);
  sandbox.set_alias(asked.template_id());
  sandbox.set_client_id(kClientId);
  sandbox.set_envd_version(kEnvdVersion);
  sandbox.set_envd_access_token(tokens_.For(id, state->id()));
  return Json(201, sandbox);
}

Response ControlPlane::SetTimeout(const Request& request,
                                  const std::string& id) {
  e2b::SetTimeout asked;
  if (std::optional<Response> bad = ParseBody(request, &asked)) {
    return std::move(*bad);
  }
  if (asked.timeout() < 0 || asked.timeout() > create_.max_timeout_seconds) {
    return E2bError(400,
                    absl::StrCat("timeout ", asked.timeout(), ": from 0 to ",
                                 create_.max_timeout_seconds, " seconds"));
  }
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(store_);
  if (!vms.ok()) return E2bError(500, std::string(vms.status().message()));
  const ListedVm* vm = FindLive(*vms, id);
  if (vm == nullptr) return NotFound(id);
  if (absl::Status moved = MoveEnd(*vm->entry.state, asked.timeout());
      !moved.ok()) {
    return E2bError(409, std::string(moved.message()));
  }
  return NoContent();
}

Response ControlPlane::Connect(const Request& request, const std::string& id) {
  e2b::ConnectSandbox asked;
  if (std::optional<Response> bad = ParseBody(request, &asked)) {
    return std::move(*bad);
  }
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(store_);
  if (!vms.ok()) return E2bError(500, std::string(vms.status().message()));
  const ListedVm* vm = FindLive(*vms, id);
  if (vm == nullptr) return NotFound(id);
  const VmState& state = *vm->entry.state;
  int status = 200;
  if (state.phase() == VmState::PAUSED) {
    ControlRequest resume;
    resume.mutable_resume();
    absl::StatusOr<ControlReply> reply = SendControl(state.dir(), resume);
    if (!reply.ok() || !reply->ok()) {
      return E2bError(500, reply.ok() ? reply->error()
                                      : std::string(reply.status().message()));
    }
    status = 201;  // E2B: resumed.
  }
  // Connect only ever extends a sandbox's life.
  if (asked.has_timeout() && asked.timeout() > 0 &&
      state.expires_unix_ms() > 0 &&
      absl::ToUnixMillis(absl::Now()) + 1000 * int64_t{asked.timeout()} >
          state.expires_unix_ms()) {
    if (absl::Status moved = MoveEnd(state, asked.timeout()); !moved.ok()) {
      return E2bError(409, std::string(moved.message()));
    }
  }
  e2b::Sandbox sandbox;
  sandbox.set_template_id(TemplateOf(state));
  sandbox.set_sandbox_id(id);
  sandbox.set_alias(TemplateOf(state));
  sandbox.set_client_id(kClientId);
  sandbox.set_envd_version(kEnvdVersion);
  sandbox.set_envd_access_token(tokens_.For(id, state.id()));
  return Json(status, sandbox);
}

Response ControlPlane::List(const Request& request) {
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(store_);
  if (!vms.ok()) return E2bError(500, std::string(vms.status().message()));
  std::set<std::string> states = {"running", "paused"};
  if (const std::string* wanted = request.Query("state")) {
    states.clear();
    for (absl::string_view s : absl::StrSplit(*wanted, ',')) {
      if (s != "running" && s != "paused") {
        return E2bError(400,
                        absl::StrCat("state ", s, ": not running or paused"));
      }
      states.emplace(s);
    }
  }
  int limit = kDefaultLimit;
  if (const std::string* text = request.Query("limit")) {
    if (!absl::SimpleAtoi(*text, &limit) || limit < 1 || limit > kMaxLimit) {
      return E2bError(400, absl::StrCat("limit ", *text,
                                        ": a number from 1 to ", kMaxLimit));
    }
  }
  // Sandboxes in the order they were created (then by name): a stable
  // order, so nextToken (the last id of the page before) resumes exactly.
  std::vector<std::pair<std::pair<int64_t, std::string>, e2b::ListedSandbox>>
      listed;
  for (const ListedVm& vm : *vms) {
    const std::string state = SandboxState(vm);
    if (state.empty() || states.count(state) == 0) continue;
    e2b::ListedSandbox sandbox;
    Describe(*vm.entry.state, state, &sandbox);
    listed.push_back({{vm.entry.state->created_unix_ms(), vm.entry.name},
                      std::move(sandbox)});
  }
  std::sort(listed.begin(), listed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t first = 0;
  if (const std::string* token = request.Query("nextToken")) {
    first = listed.size();
    for (size_t i = 0; i < listed.size(); ++i) {
      if (listed[i].first.second == *token) first = i + 1;
    }
  }
  std::vector<e2b::ListedSandbox> page;
  for (size_t i = first; i < listed.size() && page.size() < size_t(limit);
       ++i) {
    page.push_back(listed[i].second);
  }
  Response response = JsonArray(page);
  if (first + page.size() < listed.size()) {
    response.headers.emplace_back("X-Next-Token", page.back().sandbox_id());
  }
  return response;
}

Response ControlPlane::Get(const std::string& id) {
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(store_);
  if (!vms.ok()) return E2bError(500, std::string(vms.status().message()));
  const ListedVm* vm = FindLive(*vms, id);
  if (vm == nullptr) return NotFound(id);
  e2b::SandboxDetail detail;
  Describe(*vm->entry.state, SandboxState(*vm), &detail);
  return Json(200, detail);
}

Response ControlPlane::Kill(const std::string& id) {
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(store_);
  if (!vms.ok()) return E2bError(500, std::string(vms.status().message()));
  if (FindLive(*vms, id) == nullptr) return NotFound(id);
  absl::StatusOr<RemoveResult> removed =
      RemoveVm(store_, id, /*force=*/true, absl::Seconds(30));
  if (!removed.ok()) {
    if (removed.status().code() == absl::StatusCode::kNotFound) {
      return NotFound(id);  // Another kill got there first.
    }
    return E2bError(500, std::string(removed.status().message()));
  }
  log_(absl::StrCat("killed sandbox ", id));
  return NoContent();
}

}  // namespace fcvm::runner::api
