// fcvm preflight (also `fcvm setup preflight`): what this machine can run,
// why not, which assets it would use, and the Debian packages to install
// for what is missing. Exit 0 when a VM can run (QEMU, or Firecracker with
// KVM that runs a guest).
#include <cstdio>

#include "absl/strings/str_join.h"
#include "runner/cli/command.h"
#include "runner/vm/preflight.h"

namespace fcvm::runner {

int PrintPreflight(Context& ctx) {
  const PreflightReport report = RunPreflight(ctx.Facts());
  for (const PreflightLine& line : report.lines) {
    std::printf("%-4s %-24s %s\n", line.ok ? "ok" : "--", line.what.c_str(),
                line.detail.c_str());
  }
  if (!report.missing_packages.empty()) {
    // Not all of it is needed: QEMU or Firecracker; pasta for rootless runs.
    std::printf("missing here (Debian packages): apt-get install %s\n",
                absl::StrJoin(report.missing_packages, " ").c_str());
  }
  std::printf("%s\n", report.usable ? "a VM can run here"
                                    : "no VM can run here (see above)");
  return report.usable ? 0 : 1;
}

Command PreflightCommand() {
  return {"preflight",
          "what this machine can run (the same as `setup preflight`)",
          {},
          [](CLI::App&, Context& ctx) -> std::function<int()> {
            return [&ctx] { return PrintPreflight(ctx); };
          }};
}

}  // namespace fcvm::runner
