// fcvm serve MEMORY_FILE --socket PATH [FLAGS]: the userfaultfd memory
// server (uffd/server.h) for one snapshot's memory; the same server and
// the same flags (uffd/server_flags.h) as //uffd:server.
#include "runner/cli/command.h"
#include "uffd/server.h"
#include "uffd/server_flags.h"

namespace fcvm::runner {

Command ServeCommand() {
  return {"serve",
          "serve a snapshot's memory over userfaultfd (uffd/README.md)",
          {},
          [](CLI::App& app, Context&) -> std::function<int()> {
            auto values = std::make_shared<uffd::ServerFlagValues>();
            uffd::AddServerFlags(app, values.get());
            return [values] {
              absl::StatusOr<uffd::ServerOptions> options =
                  uffd::FinishServerFlags(*values);
              if (!options.ok()) return Complain(2, options.status());
              absl::Status served = uffd::ServeUntilSignalled(*options);
              return served.ok() ? 0 : Complain(1, served);
            };
          }};
}

}  // namespace fcvm::runner
