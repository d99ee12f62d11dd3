// fcvm netns-holder NAME: not for users. The supervisor of a VM with
// rootless networking starts it; it enters new user and network
// namespaces, builds the VM's TAP and rules there, and holds the
// namespaces until its stdin closes (see runner/network/rootless.h).
#include "absl/strings/str_cat.h"
#include "runner/cli/cli.h"
#include "runner/net/rootless.h"

namespace fcvm::runner {

int NetnsHolderCommand(Cli& cli, const std::vector<std::string>& args) {
  if (args.size() != 1) return Complain(2, "usage: fcvm netns-holder NAME");
  absl::StatusOr<VmState> state = cli.store.Read(args[0]);
  if (!state.ok()) return Complain(1, std::string(state.status().message()));
  return net::NetnsHolderMain(*state);
}

}  // namespace fcvm::runner
