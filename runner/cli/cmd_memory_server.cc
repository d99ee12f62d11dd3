// fcvm memory-server TAG [--on-demand] [--threads N] [--record_window D]
// [--no-prefetch]: the one userfaultfd memory server of snapshot TAG, for
// its Firecracker clones (--mem-backend uffd), in its place under the
// state root (runner/snapshot/memory_server.h). `clone --mem-backend uffd`
// starts it on demand (--on-demand: it leaves once no clone uses it);
// started by hand it serves until SIGINT/SIGTERM. The flags are `fcvm
// serve`'s (uffd/server_flags.h), checked the same way.
#include "absl/strings/str_cat.h"
#include "runner/cli/command.h"
#include "runner/snapshot/memory_server.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vmm/vmm.h"
#include "uffd/server_flags.h"

namespace fcvm::runner {
namespace {

struct MemoryServerValues {
  std::string tag;
  bool on_demand = false;
  std::string threads, record_window;
  bool no_prefetch = false;
};

int Serve(Context& ctx, const MemoryServerValues& values) {
  SnapshotStore snapshots(ctx.store.root());
  const MemoryServerPaths paths =
      MemoryServerPathsFor(ctx.store.root(), values.tag);
  std::vector<std::string> args = {
      absl::StrCat(snapshots.TagDir(values.tag), "/", kSnapshotMemoryFile),
      "--socket", paths.socket};
  if (!values.threads.empty()) {
    args.insert(args.end(), {"--threads", values.threads});
  }
  if (!values.record_window.empty()) {
    args.insert(args.end(), {"--record_window", values.record_window});
  }
  if (values.no_prefetch) args.push_back("--no-prefetch");
  absl::StatusOr<uffd::ServerOptions> options = uffd::ParseServerFlags(args);
  if (!options.ok()) return Complain(2, options.status());
  absl::Status served = RunMemoryServer(ctx.store, snapshots, values.tag,
                                        values.on_demand, *options);
  return served.ok() ? 0 : Complain(1, served);
}

}  // namespace

Command MemoryServerCommand() {
  return {"memory-server",
          "the userfaultfd memory server of snapshot TAG, for its uffd "
          "clones: memory-server TAG",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto values = std::make_shared<MemoryServerValues>();
            app.add_option("TAG", values->tag, "the snapshot")->required();
            app.add_flag("--on-demand", values->on_demand,
                         "leave once no VM is served and no live clone of "
                         "TAG uses uffd (how clone starts it)");
            app.add_option("--threads", values->threads,
                           "fault loops (default: one per CPU, at most 4)");
            app.add_option("--record_window", values->record_window,
                           "the first VM's faults during D become the "
                           "working set (default 10s; 0: never)");
            app.add_flag("--no-prefetch", values->no_prefetch,
                         "do not prefetch the working set");
            return [&ctx, values] { return Serve(ctx, *values); };
          }};
}

}  // namespace fcvm::runner
