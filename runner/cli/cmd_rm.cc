// fcvm rm [-f] NAME...: removes VMs that are not running (directory,
// writable disk, sockets, logs); -f stops them first.
#include <cstdio>

#include "runner/cli/command.h"
#include "runner/vm/remove.h"

namespace fcvm::runner {

Command RmCommand() {
  return {"rm",
          "remove stopped VMs (-f: stop them first)",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto force = std::make_shared<bool>(false);
            auto names = std::make_shared<std::vector<std::string>>();
            app.add_flag("-f,--force", *force, "stop a running VM first");
            app.add_option("NAME", *names, "VMs")->required();
            return [&ctx, force, names] {
              int code = 0;
              for (const std::string& name : *names) {
                absl::StatusOr<RemoveResult> removed =
                    RemoveVm(ctx.store, name, *force);
                if (!removed.ok()) {
                  code = Complain(1, removed.status());
                } else if (!removed->quarantined.empty()) {
                  std::printf(
                      "%s: its state cannot be read; moved to %s (delete it "
                      "once nothing uses its disk)\n",
                      name.c_str(), removed->quarantined.c_str());
                }
              }
              return code;
            };
          }};
}

}  // namespace fcvm::runner
