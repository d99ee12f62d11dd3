#include "runner/vm/detach.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<DetachedStart> StartDetached(
    Lease lease, const std::string& log_path,
    const std::function<int(Lease lease, SuperviseOptions& options)>& supervise,
    SuperviseOptions options) {
  ASSIGN_OR_RETURN(Pipe pipe, MakePipe());
  // Opened before the fork so a failure is the caller's to report.
  ASSIGN_OR_RETURN(UniqueFd null, OpenFd("/dev/null", O_RDWR));
  ASSIGN_OR_RETURN(UniqueFd log,
                   OpenFd(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) return ErrnoStatus("fork for the detached supervisor");
  if (child == 0) {
    pipe.read.reset();
    setsid();
    // dup2 clears close-on-exec: stdio stays stdio.
    dup2(null.get(), STDIN_FILENO);
    dup2(log.get(), STDOUT_FILENO);
    dup2(log.get(), STDERR_FILENO);
    null.reset();
    log.reset();
    const int report = pipe.write.release();
    // Nothing else of the caller's: a caller that starts several (clone
    // --count N) holds the others' pipes, which would stay open in every
    // later supervisor for its whole life.
    int keep[] = {report, lease.fd()};
    std::sort(std::begin(keep), std::end(keep));
    unsigned int from = 3;
    for (int fd : keep) {
      if (fd < static_cast<int>(from)) continue;
      if (fd > static_cast<int>(from)) close_range(from, fd - 1, 0);
      from = static_cast<unsigned int>(fd) + 1;
    }
    close_range(from, ~0U, 0);
    auto say = [report](const std::string& line) {
      (void)WriteAll(report, absl::StrCat(line, "\n"), "the run that waits");
      close(report);  // Said once; nobody listens after.
    };
    options.on_ready = [say](const VmState&) { say("ready"); };
    options.on_failed = [say](const std::string& error) {
      say(absl::StrCat("failed ", error));
    };
    _exit(supervise(std::move(lease), options));
  }
  // The child has the lease now; ours goes, theirs stays held.
  { Lease mine = std::move(lease); }
  pipe.write.reset();
  null.reset();
  log.reset();
  return DetachedStart{child, std::move(pipe.read), log_path};
}

[[nodiscard]] DetachedOutcome AwaitDetached(DetachedStart& start,
                                            absl::Duration wait) {
  const pid_t child = start.pid;
  const std::string& log_path = start.log_path;
  UniqueFd& report = start.report;
  // Until the child's word and the pipe's end, or the wait is over.
  absl::StatusOr<std::string> said = std::string();
  const absl::Time deadline = absl::Now() + wait;
  for (;;) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      return DetachedOutcome{
          false, true,
          absl::StrCat("not ready after ", absl::FormatDuration(wait),
                       "; it keeps booting")};
    }
    pollfd pfd = {report.get(), POLLIN, 0};
    const int ready =
        poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(report.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    said->append(buffer, n);
  }
  DetachedOutcome outcome;
  if (said.ok() && absl::StartsWith(*said, "ready")) {
    outcome.ready = true;
  } else if (said.ok() && absl::StartsWith(*said, "failed ")) {
    outcome.error = said->substr(7);
    while (!outcome.error.empty() && outcome.error.back() == '\n') {
      outcome.error.pop_back();
    }
  } else {
    // The pipe ended without a word: the child is dying (its descriptors
    // close before it can be reaped). Wait a moment for its end, then say
    // how it ended.
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, child, 0)));
    if (pidfd.valid()) {
      pollfd exit = {pidfd.get(), POLLIN, 0};
      (void)poll(&exit, 1, 5000);
    }
    int status = 0;
    const pid_t done = waitpid(child, &status, WNOHANG);
    outcome.error = absl::StrCat(
        "the detached supervisor (pid ", child, ") ended without a word",
        done == child && WIFSIGNALED(status)
            ? absl::StrCat(": killed by signal ", WTERMSIG(status))
            : "",
        "; see ", log_path);
  }
  return outcome;
}

[[nodiscard]] absl::StatusOr<DetachedOutcome> RunDetached(
    Lease lease, const std::string& log_path,
    const std::function<int(Lease lease, SuperviseOptions& options)>& supervise,
    SuperviseOptions options, absl::Duration wait) {
  ASSIGN_OR_RETURN(
      DetachedStart start,
      StartDetached(std::move(lease), log_path, supervise, std::move(options)));
  return AwaitDetached(start, wait);
}

}  // namespace fcvm::runner
