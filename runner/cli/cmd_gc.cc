// fcvm gc: what dead owners left in this state store (runner/vm/gc.h).
#include <cstdio>

#include "runner/cache/startup_cache.h"
#include "runner/cli/command.h"
#include "runner/snapshot/memory_server.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vm/gc.h"

namespace fcvm::runner {

Command GcCommand() {
  return {
      "gc",
      "clean up after killed runners: end their VMs, remove them; "
      "quarantine what cannot be read",
      {},
      [](CLI::App&, Context& ctx) -> std::function<int()> {
        return [&ctx] {
          absl::StatusOr<GcReport> report = CollectGarbage(ctx.store);
          if (!report.ok()) return Complain(1, report.status());
          for (const std::string& line : report->done) {
            std::printf("%s\n", line.c_str());
          }
          // Snapshots whose maker died before publishing them, and
          // removals that failed half way.
          // (The startup cache's entries are snapshots too.)
          SnapshotStore snapshots(ctx.store.root());
          StartupCache cache(ctx.store.root());
          for (SnapshotStore* store : {&snapshots, &cache.snapshots()}) {
            absl::StatusOr<std::vector<std::string>> partial =
                store->Abandoned();
            if (!partial.ok()) {
              report->errors.push_back(std::string(partial.status().message()));
            }
            for (const std::string& dir :
                 partial.ok() ? *partial : std::vector<std::string>()) {
              if (absl::Status gone = store->RemoveAbandoned(dir); gone.ok()) {
                std::printf("removed unfinished snapshot %s\n", dir.c_str());
              } else {
                report->errors.push_back(std::string(gone.message()));
              }
            }
          }
          // What killed memory servers left (sockets; the directories of
          // snapshots that are gone).
          for (const std::string& path :
               CollectMemoryServers(snapshots, ctx.store.root())) {
            std::printf("removed %s\n", path.c_str());
          }
          for (const std::string& line : report->errors) {
            Complain(1, line);
          }
          std::fprintf(stderr, "fcvm: gc: %zu VM(s) cleaned up\n",
                       report->done.size());
          return report->errors.empty() ? 0 : 1;
        };
      }};
}

}  // namespace fcvm::runner
