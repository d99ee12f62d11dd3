#ifndef FCVM_RUNNER_API_CONTROL_PLANE_H_
#define FCVM_RUNNER_API_CONTROL_PLANE_H_

// E2B's control plane (../shared/notes/e2b-compat.md §2) over fcvm's state
// store, the same one the CLI uses: every live VM is a sandbox (its name is
// the sandbox id), whoever started it, and a sandbox killed here is gone
// from `fcvm ls`. No state of its own.
//
// Served: list (GET /v2/sandboxes and /sandboxes: state filter, limit,
// nextToken pagination with X-Next-Token), get (GET /sandboxes/{id}), kill
// (DELETE /sandboxes/{id}: 204, or 404 {"code":404} so that the SDK's kill
// answers false). Not yet: create, connect, timeout, pause/resume,
// metrics, snapshots, fork — 501 with E2B's error document, naming the
// route. Every answer is E2B's JSON (e2b/api.proto); every request needs a
// key of --api-keys-file in X-API-KEY (401 otherwise).

#include <functional>
#include <string>

#include "runner/api/auth.h"
#include "runner/api/http_server.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::api {

// What the SDK's envd version gates switch on (§3.8): the version the
// agent surface will report for every sandbox.
inline constexpr char kEnvdVersion[] = "0.5.7";

// E2B's error document {"code":N,"message":"..."} with HTTP status `status`.
Response E2bError(int status, const std::string& message);

class ControlPlane {
 public:
  ControlPlane(StateStore& store, ApiKeys keys,
               std::function<void(const std::string&)> log)
      : store_(store), keys_(std::move(keys)), log_(std::move(log)) {}

  // The HTTP server's handler (thread-safe: the store locks per VM).
  Response Handle(const Request& request);

 private:
  Response List(const Request& request);
  Response Get(const std::string& id);
  Response Kill(const std::string& id);

  StateStore& store_;
  const ApiKeys keys_;
  std::function<void(const std::string&)> log_;
};

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_CONTROL_PLANE_H_
