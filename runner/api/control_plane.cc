#include "runner/api/control_plane.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "runner/api/e2b/api.pb.h"
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

template <typename M>
void Describe(const VmState& state, const std::string& sandbox_state, M* out) {
  out->set_sandbox_id(state.name());
  out->set_template_id(state.image());
  out->set_alias(state.image());
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
    if (request.method == "POST") {
      return E2bError(501, absl::StrCat("POST ", request.path,
                                        " (create) is not served by fcvm api "
                                        "yet"));
    }
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
    if (parts.size() == 2 && !id.empty()) {
      static const std::set<std::string>* later = new std::set<std::string>{
          "timeout",   "connect", "pause",   "resume",    "metrics",
          "snapshots", "fork",    "network", "refreshes", "logs"};
      if (later->count(parts[1]) != 0) {
        return E2bError(501, absl::StrCat(request.method, " ", request.path,
                                          " is not served by fcvm api yet"));
      }
    }
  }
  return E2bError(404,
                  absl::StrCat("no route ", request.method, " ", request.path));
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
  Response response;
  response.status = 204;
  return response;
}

}  // namespace fcvm::runner::api
