// fcvm netns-holder: not for users. The supervisor of a VM with rootless
// networking starts it and hands it the VM's network on stdin; it enters
// new user and network namespaces, builds the VM's TAP and table there,
// and holds the namespaces until its stdin closes (runner/net/rootless.h).
#include "runner/cli/command.h"
#include "runner/net/rootless.h"

namespace fcvm::runner {

Command NetnsHolderCommand() {
  return {"netns-holder",
          "internal: holds a VM's rootless namespaces",
          {},
          [](CLI::App&, Context&) -> std::function<int()> {
            return [] { return net::NetnsHolderMain(); };
          },
          /*hidden=*/true};
}

}  // namespace fcvm::runner
