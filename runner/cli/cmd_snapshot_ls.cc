// fcvm snapshot ls [--json] | inspect TAG... (registered by
// cmd_snapshot.cc).
#include <cstdio>

#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/command.h"
#include "runner/snapshot/remove.h"
#include "runner/snapshot/snapshot_store.h"

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

}  // namespace

int SnapshotList(Context& ctx, bool json) {
  absl::StatusOr<std::vector<SnapshotEntry>> entries =
      SnapshotStore(ctx.store.root()).List();
  if (!entries.ok()) return Complain(1, entries.status());
  std::vector<std::string> items;
  if (!json)
    std::printf("%-24s %-20s %-8s %10s %10s %s\n", "TAG", "VM", "ARCH",
                "MEMORY", "DISK", "CLONES");
  for (const SnapshotEntry& entry : *entries) {
    if (!entry.manifest.ok()) {
      if (!json)
        std::printf("%-24s (%s)\n", entry.tag.c_str(),
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
    absl::StatusOr<std::vector<std::string>> clones =
        LiveClones(ctx.store, m.tag());
    std::printf("%-24s %-20s %-8s %8.1f M %8.1f M %zu\n", m.tag().c_str(),
                m.source_vm().c_str(), m.arch().c_str(), memory / 1048576.0,
                disk / 1048576.0, clones.ok() ? clones->size() : 0);
  }
  if (json) std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
  return 0;
}

int SnapshotInspect(Context& ctx, const std::vector<std::string>& tags) {
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

}  // namespace fcvm::runner
