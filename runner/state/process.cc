#include "runner/state/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

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

[[nodiscard]] absl::StatusOr<std::optional<ProcessRef>> ProcessRef::Open(
    pid_t pid, uint64_t start_ticks) {
  if (pid <= 0 || start_ticks == 0) return std::optional<ProcessRef>();
  // glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++: the syscall.
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return std::optional<ProcessRef>();
    return ErrnoStatus(absl::StrCat("pidfd_open ", pid));
  }
  UniqueFd pidfd(fd);
  // The pidfd now names one process for good; is it the recorded one?
  if (StartTicks(pid) != start_ticks) return std::optional<ProcessRef>();
  return std::optional<ProcessRef>(ProcessRef(pid, std::move(pidfd)));
}

[[nodiscard]] absl::Status ProcessRef::Signal(int signal) const {
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal, nullptr, 0) != 0) {
    if (errno == ESRCH) return absl::OkStatus();  // It has just exited.
    return ErrnoStatus(absl::StrCat("signal ", signal, " to pid ", pid_));
  }
  return absl::OkStatus();
}

bool ProcessRef::WaitForExit(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    pollfd pfd = {pidfd_.get(), POLLIN, 0};
    const int64_t left =
        std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    const int n =
        poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

[[nodiscard]] absl::Status ProcessRef::Kill(absl::Duration timeout) const {
  RETURN_IF_ERROR(Signal(SIGKILL));
  if (!WaitForExit(timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("pid ", pid_, " still runs ",
                     absl::FormatDuration(timeout), " after SIGKILL"));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status KillRecorded(pid_t pid, uint64_t start_ticks,
                                        absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::optional<ProcessRef> process,
                   ProcessRef::Open(pid, start_ticks));
  if (!process.has_value()) return absl::OkStatus();
  return process->Kill(timeout);
}

}  // namespace fcvm::runner
