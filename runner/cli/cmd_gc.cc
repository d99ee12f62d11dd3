// fcvm gc: what dead owners left in this state store (runner/vm/gc.h).
#include <cstdio>

#include "runner/cli/command.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vm/gc.h"

namespace fcvm::runner {

Command GcCommand() {
  return {"gc",
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
              for (const std::string& line : report->errors) {
                Complain(1, line);
              }
              // Snapshots whose maker died before publishing them.
              SnapshotStore snapshots(ctx.store.root());
              absl::StatusOr<std::vector<std::string>> partial =
                  snapshots.Abandoned();
              for (const std::string& dir : partial.ok()
                                                ? *partial
                                                : std::vector<std::string>()) {
                if (snapshots.RemoveAbandoned(dir).ok()) {
                  std::printf("removed unfinished snapshot %s\n", dir.c_str());
                }
              }
              std::fprintf(stderr, "fcvm: gc: %zu VM(s) cleaned up\n",
                           report->done.size());
              return report->errors.empty() ? 0 : 1;
            };
          }};
}

}  // namespace fcvm::runner
