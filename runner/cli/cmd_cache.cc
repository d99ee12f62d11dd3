// fcvm cache ls [--json] | rm [-f] KEY...|--all | prune | fill VM (hidden):
// the startup-snapshot cache (runner/cache/). Entries are made by `run`
// (a miss stores one once the container is ready) and pruned, least
// recently used first, to --cache_max_bytes.
#include <cstdio>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cache/cache.pb.h"
#include "runner/cache/fill.h"
#include "runner/cache/startup_cache.h"
#include "runner/cli/command.h"

namespace fcvm::runner {
namespace {

CacheEntryInfo Info(const CacheEntry& entry) {
  CacheEntryInfo info;
  info.set_key(entry.key);
  info.set_dir(entry.dir);
  info.set_bytes(entry.bytes);
  info.set_last_used_unix_ms(entry.last_used_unix_ms);
  for (const std::string& user : entry.users) info.add_users(user);
  if (!entry.manifest.ok()) {
    info.set_error(std::string(entry.manifest.status().message()));
    return info;
  }
  const SnapshotManifest& m = *entry.manifest;
  info.set_created_unix_ms(m.created_unix_ms());
  info.set_image(m.source().image());
  info.set_source_vm(m.source_vm());
  *info.mutable_cache_key() = m.cache_key();
  return info;
}

std::string Ago(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::StrCat(
      absl::FormatDuration(absl::Trunc(
          absl::Now() - absl::FromUnixMillis(unix_ms), absl::Seconds(1))),
      " ago");
}

int List(Context& ctx, bool json) {
  StartupCache cache(ctx.store.root());
  absl::StatusOr<std::vector<CacheEntry>> entries = cache.List(ctx.store);
  if (!entries.ok()) return Complain(1, entries.status());
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    std::vector<std::string> items;
    for (const CacheEntry& entry : *entries) {
      std::string item;
      (void)google::protobuf::util::MessageToJsonString(Info(entry), &item,
                                                        options);
      items.push_back(item);
    }
    std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
    return 0;
  }
  std::printf("%-32s  %-24s %-20s %9s  %-14s %s\n", "KEY", "IMAGE", "FROM VM",
              "SIZE", "LAST USED", "IN USE BY");
  uint64_t total = 0;
  for (const CacheEntry& entry : *entries) {
    const CacheEntryInfo info = Info(entry);
    total += entry.bytes;
    std::printf(
        "%-32s  %-24s %-20s %7.1f M  %-14s %s\n", info.key().c_str(),
        info.error().empty() ? info.image().c_str() : info.error().c_str(),
        info.source_vm().c_str(), entry.bytes / 1048576.0,
        Ago(entry.last_used_unix_ms).c_str(),
        absl::StrJoin(entry.users, ",").c_str());
  }
  std::fprintf(stderr, "fcvm: %zu cache entries, %.1f MiB in %s\n",
               entries->size(), total / 1048576.0, cache.dir().c_str());
  return 0;
}

int Remove(Context& ctx, const std::vector<std::string>& keys, bool all,
           bool force) {
  StartupCache cache(ctx.store.root());
  std::vector<std::string> chosen = keys;
  if (all) {
    if (!keys.empty()) return Complain(2, "cache rm: KEY... or --all");
    absl::StatusOr<std::vector<CacheEntry>> entries = cache.List(ctx.store);
    if (!entries.ok()) return Complain(1, entries.status());
    for (const CacheEntry& entry : *entries) chosen.push_back(entry.key);
  } else if (keys.empty()) {
    return Complain(2, "cache rm: KEY... or --all (fcvm cache ls)");
  }
  int code = 0;
  for (const std::string& key : chosen) {
    if (absl::Status removed = cache.Remove(ctx.store, key, force);
        !removed.ok()) {
      code = Complain(1, removed);
    } else {
      std::printf("%s\n", key.c_str());
    }
  }
  return code;
}

int Prune(Context& ctx, uint64_t max_bytes) {
  StartupCache cache(ctx.store.root());
  absl::StatusOr<PruneReport> report = cache.Prune(ctx.store, max_bytes);
  if (!report.ok()) return Complain(1, report.status());
  for (const std::string& key : report->removed) {
    std::printf("%s\n", key.c_str());
  }
  std::fprintf(stderr,
               "fcvm: cache: %zu entries removed, %.1f MiB -> %.1f MiB (limit "
               "%.1f MiB)%s%s\n",
               report->removed.size(), report->bytes_before / 1048576.0,
               report->bytes_after / 1048576.0, max_bytes / 1048576.0,
               report->in_use.empty() ? "" : "; kept, in use: ",
               absl::StrJoin(report->in_use, ", ").c_str());
  return report->bytes_after <= max_bytes ? 0 : 1;
}

int Fill(Context& ctx, const std::string& vm) {
  absl::StatusOr<uint64_t> max = ctx.CacheMaxBytes();
  if (!max.ok()) return Complain(2, max.status());
  StartupCache cache(ctx.store.root());
  absl::StatusOr<std::string> done = FillCache(ctx.store, cache, vm, *max);
  if (!done.ok())
    return Complain(
        1, absl::StrCat(vm, ": startup cache: ", done.status().message()));
  std::fprintf(stderr, "fcvm: %s: %s\n", vm.c_str(), done->c_str());
  return 0;
}

}  // namespace

Command CacheCommand() {
  return {"cache",
          "the startup-snapshot cache: ls, rm, prune",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto chosen = std::make_shared<std::function<int()>>();
            app.require_subcommand(1);
            auto json = std::make_shared<bool>(false);
            CLI::App* ls = app.add_subcommand("ls", "list the entries");
            ls->alias("list");
            ls->add_flag("--json", *json, "the entries as a JSON array");
            ls->callback([&ctx, chosen, json] {
              *chosen = [&ctx, json] { return List(ctx, *json); };
            });
            auto keys = std::make_shared<std::vector<std::string>>();
            auto all = std::make_shared<bool>(false);
            auto force = std::make_shared<bool>(false);
            CLI::App* rm = app.add_subcommand("rm", "remove entries");
            rm->add_option("KEY", *keys, "entries (fcvm cache ls)");
            rm->add_flag("--all", *all, "every entry");
            rm->add_flag("-f,--force", *force,
                         "also entries live VMs were restored from (they "
                         "run on)");
            rm->callback([&ctx, chosen, keys, all, force] {
              *chosen = [&ctx, keys, all, force] {
                return Remove(ctx, *keys, *all, *force);
              };
            });
            CLI::App* prune = app.add_subcommand(
                "prune",
                "remove least recently used entries until the cache takes at "
                "most --cache_max_bytes");
            prune->callback([&ctx, chosen] {
              *chosen = [&ctx] {
                absl::StatusOr<uint64_t> max = ctx.CacheMaxBytes();
                if (!max.ok()) return Complain(2, max.status());
                return Prune(ctx, *max);
              };
            });
            auto vm = std::make_shared<std::string>();
            CLI::App* fill = app.add_subcommand(
                "fill",
                "store VM's startup snapshot (its supervisor runs this)");
            fill->group("");
            fill->add_option("VM", *vm, "the VM")->required();
            fill->callback([&ctx, chosen, vm] {
              *chosen = [&ctx, vm] { return Fill(ctx, *vm); };
            });
            return [chosen] { return (*chosen)(); };
          }};
}

}  // namespace fcvm::runner
