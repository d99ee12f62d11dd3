// fcvm api [--api-listen ADDR] --api-keys-file FILE: an HTTP API that the
// E2B SDKs drive (runner/api/README.md), over the same state store as the
// other commands.
#include "runner/api/serve.h"
#include "runner/cli/command.h"

namespace fcvm::runner {

Command ApiCommand() {
  return {"api",
          "serve an E2B-compatible HTTP API (runner/api/README.md)",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto options = std::make_shared<api::ApiOptions>();
            app.add_option("--api-listen", options->api_listen,
                           "the control plane's address: HOST:PORT, "
                           "[IPV6]:PORT or unix:PATH")
                ->capture_default_str();
            app.add_flag("--allow-remote", options->allow_remote,
                         "listen on a non-loopback address (plain HTTP: put "
                         "a TLS proxy in front)");
            app.add_option("--api-keys-file", options->api_keys_file,
                           "API keys, one per line (mode 0600)")
                ->required();
            app.add_option("--base-template", options->base_template,
                           "what E2B's default template \"base\" runs: an "
                           "image or an fcvm template")
                ->capture_default_str();
            app.add_option("--max-connections", options->max_connections,
                           "connections served at once")
                ->capture_default_str();
            return [&ctx, options] {
              api::ApiOptions resolved = *options;
              resolved.api_keys_file = ctx.Resolve(resolved.api_keys_file);
              resolved.fcvm_argv = ctx.GlobalArgv();
              absl::Status served =
                  api::ServeUntilSignalled(ctx.store, resolved);
              return served.ok() ? 0 : Complain(1, served);
            };
          }};
}

}  // namespace fcvm::runner
