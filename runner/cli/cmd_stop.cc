// fcvm stop [-t SECONDS] NAME...: the agent stops the container gracefully,
// syncs and powers off; past the timeout the VM is ended the hard way.
#include <cstdio>

#include "absl/time/time.h"
#include "runner/cli/command.h"
#include "runner/vm/stop.h"

namespace fcvm::runner {

Command StopCommand() {
  return {"stop",
          "stop VMs gracefully",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto seconds = std::make_shared<int>(60);
            auto names = std::make_shared<std::vector<std::string>>();
            app.add_option("-t,--time", *seconds,
                           "seconds to wait before ending the VM the hard way")
                ->check(CLI::NonNegativeNumber);
            app.add_option("NAME", *names, "VMs")->required();
            return [&ctx, seconds, names] {
              int code = 0;
              for (const std::string& name : *names) {
                absl::StatusOr<StopResult> stopped =
                    StopVm(ctx.store, name, absl::Seconds(*seconds));
                if (!stopped.ok()) {
                  code = Complain(1, stopped.status());
                } else if (!stopped->cleanup.what.empty()) {
                  std::printf("%s: cleaned up %s\n", name.c_str(),
                              stopped->cleanup.what.c_str());
                }
              }
              return code;
            };
          }};
}

}  // namespace fcvm::runner
