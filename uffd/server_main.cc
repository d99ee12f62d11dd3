// //uffd:server: serves a snapshot's memory file to Firecracker VMs over
// userfaultfd (see server.h); its flags are uffd/server_flags.h's, the
// same as `fcvm serve`'s.
//   server MEMORY_FILE --socket PATH [flags]   (--help lists them)
// SIGUSR1 prints every VM's stats; SIGINT/SIGTERM stop it.

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "uffd/server.h"
#include "uffd/server_flags.h"

int main(int argc, char** argv) {
  CLI::App app("serves a snapshot's memory to Firecracker VMs over userfaultfd",
               "server");
  fcvm::uffd::ServerFlagValues values;
  fcvm::uffd::AddServerFlags(app, &values);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Printed (--help too, which exits 0); any other: bad flags, 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  absl::StatusOr<fcvm::uffd::ServerOptions> options =
      fcvm::uffd::FinishServerFlags(values);
  if (!options.ok()) {
    std::fprintf(stderr, "fcvm-uffd: %s (--help lists the flags)\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  if (absl::Status served = fcvm::uffd::ServeUntilSignalled(*options);
      !served.ok()) {
    std::fprintf(stderr, "fcvm-uffd: %s\n",
                 std::string(served.message()).c_str());
    return 1;
  }
  return 0;
}
