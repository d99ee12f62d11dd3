// fcvm stop [-t SECONDS] NAME...: the agent stops the container gracefully,
// syncs and powers off; past the timeout the VM is ended the hard way.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runner/cli/cli.h"

namespace fcvm::runner {

int StopCommand(Cli& cli, const std::vector<std::string>& args) {
  int seconds = 60;
  std::vector<std::string> names;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-t" || args[i] == "--time") {
      if (i + 1 >= args.size() || !absl::SimpleAtoi(args[i + 1], &seconds) ||
          seconds < 0) {
        return Complain(2, "stop: -t takes a number of seconds");
      }
      ++i;
    } else {
      names.push_back(args[i]);
    }
  }
  if (names.empty()) return Complain(2, "stop: which VM? fcvm stop NAME");
  int code = 0;
  for (const std::string& name : names) {
    if (absl::Status stopped = StopVm(cli, name, absl::Seconds(seconds));
        !stopped.ok()) {
      code = Complain(1, std::string(stopped.message()));
    }
  }
  return code;
}

}  // namespace fcvm::runner
