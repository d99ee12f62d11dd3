// How fast `fcvm ls` reads the state store as it fills: StateStore::List()
// over N VMs whose state files are as large as a real run's (spec and plan
// filled in), timed several times per N; ListVms() (List plus a probe of
// every VM's lease, what `ls` does); the `fcvm ls` and `fcvm ls --json`
// commands themselves over 1000 VMs; median, min, max. Also one atomic
// state update (what every phase change costs).
//   bazel run //bench:state_ls
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runner/state/state_store.h"
#include "runner/vm/listing.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void Report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-34s median %8.3f ms  min %8.3f  max %8.3f  (n=%zu)\n", what,
              ms[ms.size() / 2], ms.front(), ms.back(), ms.size());
}

}  // namespace

int main(int argc, char** argv) {
  char dir[] = "/tmp/fcvm-state-bench.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  fcvm::runner::StateStore store(dir);
  int created = 0;
  for (int target : {10, 100, 1000}) {
    for (; created < target; ++created) {
      fcvm::runner::VmState state;
      state.set_name(absl::StrCat("vm-", created));
      state.set_id(absl::StrCat("id", created));
      state.set_image("nginx");
      fcvm::runner::VmSpec& spec = *state.mutable_spec();
      spec.set_kernel("/var/lib/fcvm/vmlinux");
      for (int d = 0; d < 3; ++d) spec.add_disks()->set_path("/var/lib/x.img");
      spec.mutable_plan()->set_image("oci-archive:/dev/vdc");
      spec.mutable_plan()->set_entropy(std::string(32, 'e'));
      for (int p = 0; p < 8; ++p) state.add_phases()->set_phase("agent up");
      state.set_phase(fcvm::runner::VmState::RUNNING);
      // The lease is let go at once: ls will find the owner gone.
      if (!store.Create(state).ok()) return 1;
    }
    std::vector<double> ms;
    size_t listed = 0;
    for (int run = 0; run < 9; ++run) {
      const auto start = Clock::now();
      absl::StatusOr<std::vector<fcvm::runner::StoreEntry>> all = store.List();
      ms.push_back(Ms(Clock::now() - start));
      listed = all.ok() ? all->size() : 0;
    }
    Report(absl::StrCat("List() of ", listed, " VMs").c_str(), ms);
    std::vector<double> probed;
    for (int run = 0; run < 9; ++run) {
      const auto start = Clock::now();
      absl::StatusOr<std::vector<fcvm::runner::ListedVm>> all =
          fcvm::runner::ListVms(store);
      probed.push_back(Ms(Clock::now() - start));
      listed = all.ok() ? all->size() : 0;
    }
    Report(absl::StrCat("ListVms() of ", listed, " VMs").c_str(), probed);
  }
  // The commands, as a user runs them (process start included); more
  // than one fcvm (another build, for a baseline in the same run) are
  // timed turn by turn over the same store.
  for (const char* json : {"", " --json"}) {
    std::vector<std::vector<double>> ms(argc);
    for (int run = 0; run < 21; ++run) {
      for (int b = 1; b < argc; ++b) {
        const std::string command = absl::StrCat(argv[b], " --state_dir ", dir,
                                                 " ls", json, " >/dev/null");
        const auto start = Clock::now();
        if (system(command.c_str()) != 0) return 1;
        ms[b].push_back(Ms(Clock::now() - start));
      }
    }
    for (int b = 1; b < argc; ++b) {
      Report(absl::StrCat("fcvm ls", json, " of 1000 VMs (",
                          b == 1 ? "this" : argv[b], ")")
                 .c_str(),
             ms[b]);
    }
  }
  std::vector<double> update;
  for (int run = 0; run < 50; ++run) {
    const auto start = Clock::now();
    (void)store.Update("vm-7", [](fcvm::runner::VmState& s) {
      s.set_exit_code(s.exit_code() + 1);
    });
    update.push_back(Ms(Clock::now() - start));
  }
  Report("Update() (lock, read, write, fsync)", update);
  std::printf("state directory: %s\n", dir);
  // FCVM_BENCH_KEEP=1 keeps the store (to profile `fcvm ls` over it).
  if (std::getenv("FCVM_BENCH_KEEP") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return 0;
}
