#ifndef FCVM_RUNNER_VM_USAGE_H_
#define FCVM_RUNNER_VM_USAGE_H_

// What a VM costs the host, from its VMM's /proc/PID/smaps_rollup and
// /proc/PID/stat: RSS, PSS (each shared page divided among its mappers:
// what a fleet adds up to), shared and private memory, and CPU time, for
// `fcvm top`, the MEM column of `ls` and `inspect`.

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

struct MemoryUsage {
  uint64_t rss_kib = 0;
  uint64_t pss_kib = 0;
  uint64_t shared_kib = 0;   // Shared_Clean + Shared_Dirty.
  uint64_t private_kib = 0;  // Private_Clean + Private_Dirty.
};

// Pure: the fields of an smaps_rollup text; InvalidArgument without them.
[[nodiscard]] absl::StatusOr<MemoryUsage> ParseSmapsRollup(
    absl::string_view text);

// The VMM `pid` whose start time is `start_ticks` (never a reused pid);
// NotFound when it is gone.
[[nodiscard]] absl::StatusOr<MemoryUsage> ReadMemoryUsage(pid_t pid,
                                                          uint64_t start_ticks);

// utime + stime of the process, in clock ticks (sysconf(_SC_CLK_TCK)).
[[nodiscard]] absl::StatusOr<uint64_t> CpuTicks(pid_t pid);

// One running VM's VMM, sampled now.
struct VmSample {
  std::string name;
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // With pid: which process (never a reused pid).
  uint64_t cpu_ticks = 0;    // CpuTicks.
  MemoryUsage memory;
};

// The VMs whose owner lives among `names` (every VM if empty), each with
// its VMM sampled; a VMM that ends meanwhile is left out.
[[nodiscard]] absl::StatusOr<std::vector<VmSample>> SampleVms(
    const StateStore& store, const std::set<std::string>& names);

// "123.4M": KiB as MiB for tables.
std::string Mib(uint64_t kib);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_USAGE_H_
