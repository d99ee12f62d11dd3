// fcvm snapshot create VM [--tag TAG] [--stop] | ls [--json] | inspect
// TAG... | rm [-f] TAG...: snapshots of running VMs (runner/snapshot/).
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/command.h"
#include "runner/snapshot/create.h"
#include "runner/snapshot/remove.h"

namespace fcvm::runner {
namespace {

std::string Json(const SnapshotManifest& manifest) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(manifest, &json, options);
  return json;
}

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

int List(Context& ctx, bool json) {
  absl::StatusOr<std::vector<SnapshotEntry>> entries =
      SnapshotStore(ctx.store.root()).List();
  if (!entries.ok()) return Complain(1, entries.status());
  std::vector<std::string> items;
  if (!json) std::printf("%-24s %-20s %-8s %10s %10s %s\n", "TAG", "VM", "ARCH",
                         "MEMORY", "DISK", "CLONES");
  for (const SnapshotEntry& entry : *entries) {
    if (!entry.manifest.ok()) {
      if (!json) std::printf("%-24s (%s)\n", entry.tag.c_str(),
                             std::string(entry.manifest.status().message()).c_str());
      continue;
    }
    const SnapshotManifest& m = *entry.manifest;
    if (json) {
      items.push_back(Json(m));
      continue;
    }
    uint64_t memory = 0, disk = 0;
    for (const HeldFile& file : m.files()) {
      if (file.name() == "memory") memory = file.allocated();
      if (file.name() == "disk") disk = file.allocated();
    }
    absl::StatusOr<std::vector<std::string>> clones = LiveClones(ctx.store, m.tag());
    std::printf("%-24s %-20s %-8s %8.1f M %8.1f M %zu\n", m.tag().c_str(),
                m.source_vm().c_str(), m.arch().c_str(), memory / 1048576.0,
                disk / 1048576.0, clones.ok() ? clones->size() : 0);
  }
  if (json) std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
  return 0;
}

int Inspect(Context& ctx, const std::vector<std::string>& tags) {
  SnapshotStore snapshots(ctx.store.root());
  std::vector<std::string> items;
  int code = 0;
  for (const std::string& tag : tags) {
    absl::StatusOr<SnapshotManifest> manifest = snapshots.Read(tag);
    if (!manifest.ok()) {
      code = Complain(1, manifest.status());
    } else {
      items.push_back(Json(*manifest));
    }
  }
  std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
  return code;
}

int Remove(Context& ctx, const std::vector<std::string>& tags, bool force) {
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

}  // namespace

Command SnapshotCommand() {
  return {"snapshot",
          "snapshots of running VMs: create, ls, inspect, rm",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto chosen = std::make_shared<std::function<int()>>();
            app.require_subcommand(1);
            auto request = std::make_shared<SnapshotRequest>();
            CLI::App* create = app.add_subcommand(
                "create", "pause VM, write its state, memory and disk, resume it");
            create->add_option("VM", request->vm, "the running VM")->required();
            create->add_option("--tag", request->tag, "the snapshot's name (default: <VM>-<n>)");
            create->add_flag("--stop", request->stop, "stop the VM afterwards instead of resuming it");
            create->callback([&ctx, chosen, request] {
              *chosen = [&ctx, request] { return Create(ctx, *request); };
            });
            auto json = std::make_shared<bool>(false);
            CLI::App* ls = app.add_subcommand("ls", "list snapshots");
            ls->alias("list");
            ls->add_flag("--json", *json, "the manifests as a JSON array");
            ls->callback([&ctx, chosen, json] {
              *chosen = [&ctx, json] { return List(ctx, *json); };
            });
            auto tags = std::make_shared<std::vector<std::string>>();
            auto force = std::make_shared<bool>(false);
            CLI::App* inspect = app.add_subcommand("inspect", "manifests as JSON");
            inspect->add_option("TAG", *tags, "snapshots")->required();
            inspect->callback([&ctx, chosen, tags] {
              *chosen = [&ctx, tags] { return Inspect(ctx, *tags); };
            });
            CLI::App* rm = app.add_subcommand("rm", "remove snapshots no running clone uses");
            rm->add_option("TAG", *tags, "snapshots")->required();
            rm->add_flag("-f,--force", *force, "stop the clones that use it first");
            rm->callback([&ctx, chosen, tags, force] {
              *chosen = [&ctx, tags, force] { return Remove(ctx, *tags, *force); };
            });
            return [chosen] { return (*chosen)(); };
          }};
}

}  // namespace fcvm::runner
