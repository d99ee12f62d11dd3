#include "runner/api/serve.h"

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runner/api/auth.h"
#include "runner/api/control_plane.h"
#include "runner/api/http_server.h"
#include "runner/api/listen.h"

namespace fcvm::runner::api {

absl::Status ServeUntilSignalled(StateStore& store, const ApiOptions& options) {
  if (options.api_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "--api-keys-file is required: a file with one API key per line "
        "(mode 0600); the SDK sends one as E2B_API_KEY");
  }
  ASSIGN_OR_RETURN(ApiKeys keys, ApiKeys::Load(options.api_keys_file));
  ASSIGN_OR_RETURN(const ListenAddress address,
                   ParseListenAddress(options.api_listen, "--api-listen"));
  // Blocked before the server's threads start, so that they inherit the
  // mask and only sigwait below sees these.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  ASSIGN_OR_RETURN(Listener listener,
                   Listen(address, "--api-listen", options.allow_remote));
  auto log = [](const std::string& line) { std::cerr << line << "\n"; };
  RETURN_IF_ERROR(EnsurePrivateDir(store.root()));
  RETURN_IF_ERROR(EnsurePrivateDir(absl::StrCat(store.root(), "/api")));
  ASSIGN_OR_RETURN(
      AccessTokens tokens,
      AccessTokens::Open(absl::StrCat(store.root(), "/api/access-token.key")));
  CreateOptions create;
  create.fcvm_argv = options.fcvm_argv;
  create.base_template = options.base_template;
  ControlPlane plane(store, std::move(keys), std::move(tokens),
                     std::move(create), [](const std::string& line) {
                       std::cerr << "fcvm api: " << line << "\n";
                     });
  ServerOptions server_options;
  server_options.name = "control plane";
  server_options.max_connections = options.max_connections;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.idle_timeout = options.idle_timeout;
  server_options.error_response = [](int status, const std::string& message) {
    return E2bError(status, message);
  };
  server_options.log = log;
  const std::string where = listener.address.ToString();
  ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server,
                   HttpServer::Start(
                       std::move(listener),
                       [&plane](const Request& r) { return plane.Handle(r); },
                       std::move(server_options)));
  std::cerr << "fcvm api: control plane on "
            << (address.kind == ListenAddress::Kind::kUnix
                    ? where
                    : absl::StrCat("http://", where))
            << " (E2B_API_URL), state in " << store.root()
            << "; the agent surface (E2B_SANDBOX_URL) is not served yet"
            << std::endl;
  int signal = 0;
  sigwait(&stop, &signal);
  std::cerr << "fcvm api: " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
            << ": stopping" << std::endl;
  server.reset();
  return absl::OkStatus();
}

}  // namespace fcvm::runner::api
