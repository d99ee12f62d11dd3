// fcvm snapshot rm [-f] TAG... (registered by cmd_snapshot.cc): refused
// while clones of it run, naming them; -f stops them first.
#include <cstdio>

#include "runner/cli/command.h"
#include "runner/snapshot/remove.h"
#include "runner/snapshot/snapshot_store.h"

namespace fcvm::runner {

int SnapshotRemove(Context& ctx, const std::vector<std::string>& tags,
                   bool force) {
  SnapshotStore snapshots(ctx.store.root());
  int code = 0;
  for (const std::string& tag : tags) {
    if (absl::Status gone = RemoveSnapshot(ctx.store, snapshots, tag, force);
        !gone.ok()) {
      code = Complain(1, gone);
    } else {
      std::printf("%s\n", tag.c_str());
    }
  }
  return code;
}

}  // namespace fcvm::runner
