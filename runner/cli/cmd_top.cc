// fcvm top [VM...] [--once] [--interval SECONDS]: per running VM, its
// VMM's CPU % and memory (RSS, PSS, shared, private: runner/vm/usage.h),
// refreshed like top; --once prints one sample and exits.
#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "absl/time/clock.h"
#include "runner/cli/command.h"
#include "runner/vm/usage.h"

namespace fcvm::runner {
namespace {

int Top(Context& ctx, const std::vector<std::string>& names, bool once,
        double interval) {
  const std::set<std::string> wanted(names.begin(), names.end());
  const bool tty = isatty(STDOUT_FILENO) == 1;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  // CPU ticks of the last sample, by pid and start time (a reused pid is
  // another process).
  std::map<std::pair<pid_t, uint64_t>, uint64_t> before;
  for (bool first = true;; first = false) {
    absl::StatusOr<std::vector<VmSample>> samples =
        SampleVms(ctx.store, wanted);
    if (!samples.ok()) return Complain(1, samples.status());
    if (!first) {
      if (tty && !once) std::printf("\033[H\033[J");
      std::printf("%-24s %6s %10s %10s %10s %10s\n", "NAME", "CPU%", "RSS",
                  "PSS", "SHARED", "PRIVATE");
      for (const VmSample& s : *samples) {
        auto last = before.find({s.pid, s.start_ticks});
        if (last == before.end() || s.cpu_ticks < last->second) continue;
        const double cpu = 100.0 * (s.cpu_ticks - last->second) / hz / interval;
        std::printf("%-24s %6.1f %10s %10s %10s %10s\n", s.name.c_str(), cpu,
                    Mib(s.memory.rss_kib).c_str(),
                    Mib(s.memory.pss_kib).c_str(),
                    Mib(s.memory.shared_kib).c_str(),
                    Mib(s.memory.private_kib).c_str());
      }
      std::fflush(stdout);
      if (once) return 0;
    }
    before.clear();
    for (const VmSample& s : *samples) {
      before[{s.pid, s.start_ticks}] = s.cpu_ticks;
    }
    absl::SleepFor(absl::Seconds(interval));
  }
}

}  // namespace

Command TopCommand() {
  return {"top",
          "CPU and memory of running VMs (their VMMs), refreshed",
          {"stats"},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto names = std::make_shared<std::vector<std::string>>();
            auto once = std::make_shared<bool>(false);
            auto interval = std::make_shared<double>(2.0);
            app.add_option("VM", *names, "these VMs only (default: all)");
            app.add_flag("--once", *once, "one sample, then exit");
            app.add_option("--interval", *interval, "seconds between samples")
                ->check(CLI::Range(0.1, 3600.0));
            return [&ctx, names, once, interval] {
              return Top(ctx, *names, *once, *interval);
            };
          }};
}

}  // namespace fcvm::runner
