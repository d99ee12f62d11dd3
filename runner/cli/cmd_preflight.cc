// fcvm preflight: what this machine can run, and why not. Exit 0 when a VM
// can run (QEMU, or Firecracker with KVM that runs a guest).
#include <cstdio>

#include "runner/cli/command.h"
#include "runner/vm/preflight.h"

namespace fcvm::runner {

Command PreflightCommand() {
  return {"preflight",
          "what this machine can run",
          {},
          [](CLI::App&, Context& ctx) -> std::function<int()> {
            return [&ctx] {
              const PreflightReport report = RunPreflight(ctx.Facts());
              for (const PreflightLine& line : report.lines) {
                std::printf("%-4s %-24s %s\n", line.ok ? "ok" : "--",
                            line.what.c_str(), line.detail.c_str());
              }
              std::printf("%s\n", report.usable
                                      ? "a VM can run here"
                                      : "no VM can run here (see above)");
              return report.usable ? 0 : 1;
            };
          }};
}

}  // namespace fcvm::runner
