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
#include "runner/vm/listing.h"
#include "runner/vm/usage.h"

namespace fcvm::runner {
namespace {

struct Sampled {
  std::string name;
  pid_t pid;
  uint64_t start_ticks;
};

int Top(Context& ctx, const std::vector<std::string>& names, bool once,
        double interval) {
  const std::set<std::string> wanted(names.begin(), names.end());
  const bool tty = isatty(STDOUT_FILENO) == 1;
  // By pid and start time: a reused pid is another process.
  std::map<std::pair<pid_t, uint64_t>, uint64_t> before;
  for (bool first = true;; first = false) {
    absl::StatusOr<std::vector<ListedVm>> vms = ListVms(ctx.store);
    if (!vms.ok()) return Complain(1, vms.status());
    std::vector<Sampled> running;
    for (const ListedVm& vm : *vms) {
      if (!wanted.empty() && !wanted.count(vm.entry.name)) continue;
      if (!vm.owner_alive || !vm.entry.state.ok()) continue;
      running.push_back({vm.entry.name, vm.entry.state->vmm_pid(),
                         vm.entry.state->vmm_start_ticks()});
    }
    std::map<std::pair<pid_t, uint64_t>, uint64_t> now;
    for (const Sampled& s : running) {
      if (absl::StatusOr<uint64_t> t = CpuTicks(s.pid); t.ok()) {
        now[{s.pid, s.start_ticks}] = *t;
      }
    }
    if (!first) {
      if (tty && !once) std::printf("\033[H\033[J");
      std::printf("%-24s %6s %10s %10s %10s %10s\n", "NAME", "CPU%", "RSS",
                  "PSS", "SHARED", "PRIVATE");
      const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
      for (const Sampled& s : running) {
        absl::StatusOr<MemoryUsage> m = ReadMemoryUsage(s.pid, s.start_ticks);
        const std::pair<pid_t, uint64_t> key = {s.pid, s.start_ticks};
        if (!m.ok() || !now.count(key) || !before.count(key) ||
            now[key] < before[key]) {
          continue;
        }
        const double cpu = 100.0 * (now[key] - before[key]) / hz / interval;
        std::printf("%-24s %6.1f %10s %10s %10s %10s\n", s.name.c_str(), cpu,
                    Mib(m->rss_kib).c_str(), Mib(m->pss_kib).c_str(),
                    Mib(m->shared_kib).c_str(), Mib(m->private_kib).c_str());
      }
      std::fflush(stdout);
      if (once) return 0;
    }
    before = std::move(now);
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
