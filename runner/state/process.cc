#include "runner/state/process.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"

namespace fcvm::runner {

uint64_t StartTicks(pid_t pid) {
  absl::StatusOr<std::string> stat =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return 0;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // count fields after the last ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(*stat).substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); field 22 is fields[19].
  uint64_t ticks = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) return 0;
  // A zombie has exited: not alive.
  return fields[0] == "Z" ? 0 : ticks;
}

bool SameProcessAlive(pid_t pid, uint64_t start_ticks) {
  return pid > 0 && start_ticks != 0 && StartTicks(pid) == start_ticks;
}

}  // namespace fcvm::runner
