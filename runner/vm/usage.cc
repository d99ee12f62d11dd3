#include "runner/vm/usage.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "runner/state/process.h"
#include "runner/vm/listing.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<MemoryUsage> ParseSmapsRollup(
    absl::string_view text) {
  MemoryUsage usage;
  int seen = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, colon);
    std::vector<absl::string_view> words =
        absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (words.empty() || !absl::SimpleAtoi(words[0], &kib)) continue;
    if (key == "Rss") {
      usage.rss_kib = kib;
      ++seen;
    } else if (key == "Pss") {
      usage.pss_kib = kib;
      ++seen;
    } else if (key == "Shared_Clean" || key == "Shared_Dirty") {
      usage.shared_kib += kib;
    } else if (key == "Private_Clean" || key == "Private_Dirty") {
      usage.private_kib += kib;
    }
  }
  if (seen != 2) {
    return absl::InvalidArgumentError("smaps_rollup without Rss and Pss");
  }
  return usage;
}

[[nodiscard]] absl::StatusOr<MemoryUsage> ReadMemoryUsage(
    pid_t pid, uint64_t start_ticks) {
  if (pid <= 0 || !SameProcessAlive(pid, start_ticks)) {
    return absl::NotFoundError(absl::StrCat("no VMM process ", pid));
  }
  ASSIGN_OR_RETURN(std::string text,
                   ReadFile(absl::StrCat("/proc/", pid, "/smaps_rollup")));
  // Read, then checked again: the pid was still ours while it was read.
  if (!SameProcessAlive(pid, start_ticks)) {
    return absl::NotFoundError(absl::StrCat("VMM process ", pid, " ended"));
  }
  return ParseSmapsRollup(text);
}

[[nodiscard]] absl::StatusOr<uint64_t> CpuTicks(pid_t pid) {
  ASSIGN_OR_RETURN(std::string stat,
                   ReadFile(absl::StrCat("/proc/", pid, "/stat")));
  // The command may hold spaces and parentheses: fields follow the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
  // Fields 14 and 15 of stat(5) are 12 and 13 after the state (field 3).
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat"));
  }
  return utime + stime;
}

[[nodiscard]] absl::StatusOr<std::vector<VmSample>> SampleVms(
    const StateStore& store, const std::set<std::string>& names) {
  ASSIGN_OR_RETURN(std::vector<ListedVm> vms, ListVms(store));
  std::vector<VmSample> samples;
  for (const ListedVm& vm : vms) {
    if (!names.empty() && !names.count(vm.entry.name)) continue;
    if (!vm.owner_alive || !vm.entry.state.ok()) continue;
    VmSample sample;
    sample.name = vm.entry.name;
    sample.pid = vm.entry.state->vmm_pid();
    sample.start_ticks = vm.entry.state->vmm_start_ticks();
    absl::StatusOr<uint64_t> cpu = CpuTicks(sample.pid);
    absl::StatusOr<MemoryUsage> memory =
        ReadMemoryUsage(sample.pid, sample.start_ticks);
    if (!cpu.ok() || !memory.ok()) continue;
    sample.cpu_ticks = *cpu;
    sample.memory = *memory;
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::string Mib(uint64_t kib) { return absl::StrFormat("%.1fM", kib / 1024.0); }

}  // namespace fcvm::runner
