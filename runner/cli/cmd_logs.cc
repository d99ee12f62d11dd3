// fcvm logs [-f] [--console] NAME: the container's output (or the whole
// console: kernel, init and the agent's framed lines).
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "runner/cli/cli.h"
#include "runner/vm/supervisor.h"

namespace fcvm::runner {

int LogsCommand(Cli& cli, const std::vector<std::string>& args) {
  bool follow = false, console = false;
  std::string name;
  for (const std::string& arg : args) {
    if (arg == "-f" || arg == "--follow") {
      follow = true;
    } else if (arg == "--console") {
      console = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return Complain(2, absl::StrCat("logs: unknown flag '", arg, "'"));
    } else if (name.empty()) {
      name = arg;
    } else {
      return Complain(2, "logs: one VM at a time");
    }
  }
  if (name.empty()) return Complain(2, "logs: which VM? fcvm logs [-f] NAME");
  absl::StatusOr<VmState> state = cli.store.Read(name);
  if (!state.ok()) return Complain(1, std::string(state.status().message()));
  const std::string path =
      absl::StrCat(state->dir(), "/", console ? kConsoleLog : kContainerLog);
  absl::StatusOr<UniqueFd> fd = OpenFd(path, O_RDONLY);
  if (!fd.ok()) return Complain(1, std::string(fd.status().message()));
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd->get(), buffer, sizeof(buffer));
    if (n > 0) {
      if (!WriteAll(STDOUT_FILENO, absl::string_view(buffer, n), "stdout")
               .ok()) {
        return 1;
      }
      continue;
    }
    if (!follow) return 0;
    // At the end: follow until the VM is gone and nothing more came.
    absl::StatusOr<VmState> now = cli.store.Read(name);
    if (!now.ok() || !SupervisorAlive(*now)) {
      const ssize_t last = read(fd->get(), buffer, sizeof(buffer));
      if (last > 0) {
        (void)WriteAll(STDOUT_FILENO, absl::string_view(buffer, last),
                       "stdout");
        continue;
      }
      return 0;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace fcvm::runner
