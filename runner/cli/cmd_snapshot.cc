// fcvm snapshot create VM [--tag TAG] [--stop] | ls [--json] | inspect
// TAG... | rm [-f] TAG...: snapshots of running VMs (runner/snapshot/);
// ls, inspect and rm are in cmd_snapshot_ls.cc.
#include <cstdio>

#include "runner/cli/command.h"
#include "runner/snapshot/create.h"

namespace fcvm::runner {
namespace {

int Create(Context& ctx, const SnapshotRequest& request) {
  SnapshotStore snapshots(ctx.store.root());
  absl::StatusOr<SnapshotManifest> made =
      CreateSnapshot(ctx.store, snapshots, request);
  if (!made.ok()) return Complain(1, made.status());
  const SnapshotTaken& taken = made->taken();
  std::fprintf(stderr,
               "fcvm: snapshot %s of %s: VM paused %.1f ms (state %.1f ms, "
               "memory %.1f ms %s, disk %.1f ms %s)\n",
               made->tag().c_str(), request.vm.c_str(), taken.paused_us() / 1e3,
               taken.state_us() / 1e3, taken.memory_us() / 1e3,
               taken.memory_method().c_str(), taken.disk_us() / 1e3,
               taken.disk_method().c_str());
  std::printf("%s\n", made->tag().c_str());
  return 0;
}

}  // namespace

Command SnapshotCommand() {
  return {
      "snapshot",
      "snapshots of running VMs: create, ls, inspect, rm",
      {},
      [](CLI::App& app, Context& ctx) -> std::function<int()> {
        auto chosen = std::make_shared<std::function<int()>>();
        app.require_subcommand(1);
        auto request = std::make_shared<SnapshotRequest>();
        CLI::App* create = app.add_subcommand(
            "create", "pause VM, write its state, memory and disk, resume it");
        create->add_option("VM", request->vm, "the running VM")->required();
        create->add_option("--tag", request->tag,
                           "the snapshot's name (default: <VM>-<n>)");
        create->add_flag("--stop", request->stop,
                         "stop the VM afterwards instead of resuming it");
        create->callback([&ctx, chosen, request] {
          *chosen = [&ctx, request] { return Create(ctx, *request); };
        });
        auto json = std::make_shared<bool>(false);
        CLI::App* ls = app.add_subcommand("ls", "list snapshots");
        ls->alias("list");
        ls->add_flag("--json", *json, "the manifests as a JSON array");
        ls->callback([&ctx, chosen, json] {
          *chosen = [&ctx, json] { return SnapshotList(ctx, *json); };
        });
        auto tags = std::make_shared<std::vector<std::string>>();
        auto force = std::make_shared<bool>(false);
        CLI::App* inspect = app.add_subcommand("inspect", "manifests as JSON");
        inspect->add_option("TAG", *tags, "snapshots")->required();
        inspect->callback([&ctx, chosen, tags] {
          *chosen = [&ctx, tags] { return SnapshotInspect(ctx, *tags); };
        });
        CLI::App* rm =
            app.add_subcommand("rm", "remove snapshots no running clone uses");
        rm->add_option("TAG", *tags, "snapshots")->required();
        rm->add_flag("-f,--force", *force, "stop the clones that use it first");
        rm->callback([&ctx, chosen, tags, force] {
          *chosen = [&ctx, tags, force] {
            return SnapshotRemove(ctx, *tags, *force);
          };
        });
        return [chosen] { return (*chosen)(); };
      }};
}

}  // namespace fcvm::runner
