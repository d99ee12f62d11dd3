#ifndef FCVM_RUNNER_API_SERVE_H_
#define FCVM_RUNNER_API_SERVE_H_

// `fcvm api`: the control plane on --api-listen until SIGINT or SIGTERM.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runner/state/state_store.h"

namespace fcvm::runner::api {

struct ApiOptions {
  std::string api_listen = "127.0.0.1:3000";
  bool allow_remote = false;
  std::string api_keys_file;  // Required.
  unsigned max_connections = 512;
  size_t max_body_bytes = 64 << 20;
  absl::Duration idle_timeout = absl::Seconds(90);
  // How create runs `fcvm run` (control_plane.h).
  std::vector<std::string> fcvm_argv;
  std::string base_template = "busybox-httpd";
};

// Checks the options (a bad listen address or keys file is an error before
// anything listens), serves until SIGINT or SIGTERM (blocked in the calling
// thread first: call before starting threads), then stops cleanly. Says
// where it listens on stderr, one line per request it refuses.
[[nodiscard]] absl::Status ServeUntilSignalled(StateStore& store,
                                               const ApiOptions& options);

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_SERVE_H_
