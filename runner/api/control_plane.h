#ifndef FCVM_RUNNER_API_CONTROL_PLANE_H_
#define FCVM_RUNNER_API_CONTROL_PLANE_H_

// E2B's control plane (../shared/notes/e2b-compat.md §2) over fcvm's state
// store, the same one the CLI uses: every live VM is a sandbox (its name is
// the sandbox id), whoever started it, and a sandbox killed here is gone
// from `fcvm ls`. No state of its own.
//
// Served: create (POST /v2/sandboxes and /sandboxes: `fcvm run -d --rm
// --timeout T`, so the VM is the CLI's and its supervisor enforces the
// timeout), list (GET /v2/sandboxes and /sandboxes: state filter, limit,
// nextToken pagination with X-Next-Token), get (GET /sandboxes/{id}), kill
// (DELETE /sandboxes/{id}: 204, or 404 {"code":404} so that the SDK's kill
// answers false), set timeout (POST /sandboxes/{id}/timeout: the VM's
// supervisor moves its end), connect (POST [/v2]/sandboxes/{id}/connect:
// the sandbox with its token, a paused one resumed, the end only moved
// later). Not yet: pause, metrics, snapshots, fork — 501 with E2B's error
// document, naming the route. Every answer is E2B's JSON (e2b/api.proto);
// every request needs a key of --api-keys-file in X-API-KEY (401
// otherwise). Unknown fields in a body are ignored, as E2B's own server
// does (newer SDKs add fields), and logged once each.

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "runner/api/auth.h"
#include "runner/api/http_server.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::api {

// What the SDK's envd version gates switch on (§3.8): the version the
// agent surface will report for every sandbox.
inline constexpr char kEnvdVersion[] = "0.5.7";

// E2B's error document {"code":N,"message":"..."} with HTTP status `status`.
Response E2bError(int status, const std::string& message);

// How create starts a sandbox.
struct CreateOptions {
  // fcvm with its global flags (Context::GlobalArgv): create runs
  // `<this> run -d ...`. Empty: create answers 501.
  std::vector<std::string> fcvm_argv;
  // What E2B's default template, "base", runs: an image (or a template).
  std::string base_template = "busybox-httpd";
  // E2B's default when the request has no timeout, and the most allowed.
  int default_timeout_seconds = 300;
  int max_timeout_seconds = 86400;
  absl::Duration start_timeout = absl::Minutes(10);
};

class ControlPlane {
 public:
  ControlPlane(StateStore& store, ApiKeys keys, AccessTokens tokens,
               CreateOptions create,
               std::function<void(const std::string&)> log)
      : store_(store),
        keys_(std::move(keys)),
        tokens_(std::move(tokens)),
        create_(std::move(create)),
        log_(std::move(log)) {}

  // The HTTP server's handler (thread-safe: the store locks per VM).
  Response Handle(const Request& request);

 private:
  Response Create(const Request& request);
  Response List(const Request& request);
  Response Get(const std::string& id);
  Response Kill(const std::string& id);
  Response SetTimeout(const Request& request, const std::string& id);
  Response Connect(const Request& request, const std::string& id);
  // The body as `message` (E2B's JSON; unknown fields ignored and logged
  // once); an error response when it is not.
  [[nodiscard]] std::optional<Response> ParseBody(
      const Request& request, google::protobuf::Message* message);
  // Moves the live VM `state`'s end to `seconds` from now.
  [[nodiscard]] absl::Status MoveEnd(const VmState& state, int64_t seconds);

  StateStore& store_;
  const ApiKeys keys_;
  const AccessTokens tokens_;
  const CreateOptions create_;
  std::function<void(const std::string&)> log_;
  absl::Mutex logged_mu_;
  std::set<std::string> logged_ ABSL_GUARDED_BY(logged_mu_);
};

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_CONTROL_PLANE_H_
