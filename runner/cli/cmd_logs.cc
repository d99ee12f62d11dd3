// fcvm logs [-f] [--console] NAME: the container's output (or the whole
// console: kernel, init, the agent's frames), as far as the logs keep it.
#include "runner/cli/command.h"
#include "runner/vm/logs.h"

namespace fcvm::runner {

Command LogsCommand() {
  return {"logs",
          "a VM's container output; each log keeps --log-max-size (default "
          "8m) plus one rotated file, older output is gone",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto request = std::make_shared<LogsRequest>();
            auto name = std::make_shared<std::string>();
            app.add_flag("-f,--follow", request->follow,
                         "keep printing new output until the VM ends");
            app.add_flag("--console", request->console,
                         "the whole serial console instead");
            app.add_option("NAME", *name, "the VM")->required();
            return [&ctx, request, name] {
              absl::StatusOr<VmState> state = ctx.store.Read(*name);
              if (!state.ok()) return Complain(1, state.status());
              absl::Status copied = CopyLogs(*state, *request);
              return copied.ok() ? 0 : Complain(1, copied);
            };
          }};
}

}  // namespace fcvm::runner
