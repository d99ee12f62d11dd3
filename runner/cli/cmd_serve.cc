// fcvm serve MEMORY_FILE --socket PATH [--threads N] [--record_window D]
//            [--no_prefetch] [--batch_bytes N] [--exit_when_idle]
// The userfaultfd memory server (uffd/server.h) for one snapshot's memory:
// the same server as //uffd:server, from the fcvm binary.

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runner/cli/cli.h"
#include "uffd/server.h"

namespace fcvm::runner {

int ServeCommand(Cli& cli, const std::vector<std::string>& args) {
  (void)cli;
  constexpr char kUsage[] =
      "usage: fcvm serve MEMORY_FILE --socket PATH [--threads N] "
      "[--record_window DURATION] [--no_prefetch] [--batch_bytes N] "
      "[--exit_when_idle]";
  uffd::ServerOptions options;
  options.threads = uffd::DefaultThreads();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    if (arg == "--socket") {
      if (!value(&options.socket_path)) return Complain(2, kUsage);
    } else if (arg == "--threads") {
      if (!value(&v) || !absl::SimpleAtoi(v, &options.threads) ||
          options.threads < 1) {
        return Complain(2, absl::StrCat("--threads '", v, "': a count >= 1"));
      }
    } else if (arg == "--record_window") {
      if (!value(&v) || !absl::ParseDuration(v, &options.record_window)) {
        return Complain(2, absl::StrCat("--record_window '", v,
                                        "': a duration like 10s (0: never)"));
      }
    } else if (arg == "--batch_bytes") {
      if (!value(&v) || !absl::SimpleAtoi(v, &options.batch_bytes) ||
          options.batch_bytes == 0) {
        return Complain(2, absl::StrCat("--batch_bytes '", v, "'"));
      }
    } else if (arg == "--no_prefetch") {
      options.prefetch = false;
    } else if (arg == "--exit_when_idle") {
      options.exit_when_idle = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return Complain(2, absl::StrCat("unknown flag '", arg, "'\n", kUsage));
    } else if (options.memory_file.empty()) {
      options.memory_file = arg;
    } else {
      return Complain(2, kUsage);
    }
  }
  if (options.memory_file.empty() || options.socket_path.empty()) {
    return Complain(2, kUsage);
  }
  if (absl::Status served = uffd::ServeUntilSignalled(options); !served.ok()) {
    return Complain(1, std::string(served.message()));
  }
  return 0;
}

}  // namespace fcvm::runner
