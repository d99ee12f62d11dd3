// fcvm run (vm) [FLAGS] IMAGE [ARGS...]: boots a VM whose agent runs IMAGE:
// the flags checked, the host's facts gathered, the launch planned
// (runner/vm/launch.h: pure), then restored from the startup cache or
// booted cold (runner/cache/run_cached.h); --template NAME restores a
// template's snapshot instead (runner/template/).
#include <cstdlib>
#include <memory>

#include "runner/cache/run_cached.h"
#include "runner/cli/command.h"
#include "runner/template/start.h"
#include "runner/vm/host_facts.h"
#include "runner/vm/launch.h"
#include "runner/vm/run.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {
namespace {

int Run(Context& ctx, const RunFlagValues& values,
        const std::vector<std::string>& remaining) {
  absl::StatusOr<RunFlags> flags = FinishRunFlags(
      values, remaining, std::getenv,
      [&ctx](const std::string& path) { return ctx.Resolve(path); });
  if (!flags.ok()) return Complain(2, flags.status());
  if (!flags->template_name.empty()) {
    return RunTemplate(ctx.store, *flags, ctx.HolderArgv());
  }
  absl::StatusOr<HostFacts> facts = GatherHostFacts(*flags, ctx.Facts());
  if (!facts.ok()) return Complain(1, facts.status());
  absl::StatusOr<LaunchSeeds> seeds = DrawSeeds();
  if (!seeds.ok()) return Complain(1, seeds.status());
  absl::StatusOr<Launch> launch = PlanLaunch(*flags, *facts, *seeds);
  if (!launch.ok()) return Complain(1, launch.status());
  CacheOptions cache;
  cache.no_cache = flags->no_cache;
  cache.holder_argv = ctx.HolderArgv();
  cache.fcvm_argv = ctx.SelfArgv();
  return RunCached(ctx.store, std::move(*launch), cache);
}

}  // namespace

Command RunCommand() {
  return {"run",
          "boot a VM that runs IMAGE: run [FLAGS] IMAGE [ARGS...]",
          {"vm"},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto values = std::make_shared<RunFlagValues>();
            AddRunFlags(app, values.get());
            return [&ctx, &app, values] {
              return Run(ctx, *values, app.remaining());
            };
          }};
}

}  // namespace fcvm::runner
