#include "runner/vm/logs.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "runner/state/lease.h"
#include "runner/state/process.h"
#include "runner/vm/supervisor.h"

namespace fcvm::runner {
namespace {

std::string Size(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes % (1 << 10) == 0) return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes, " bytes");
}

// Copies what `fd` has from its offset to `out`; OK at the end.
[[nodiscard]] absl::Status Drain(int fd, int out) {
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading the log");
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(WriteAll(out, absl::string_view(buffer, n), "stdout"));
  }
}

ino_t Inode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

std::string LogLimitsText(uint64_t log_max_bytes) {
  const uint64_t cap = log_max_bytes == 0 ? kDefaultLogMaxBytes : log_max_bytes;
  return absl::StrCat("output older than the last ", Size(2 * cap),
                      " is not kept (each log: ", Size(cap),
                      ", plus one rotated file; run --log-max-size)");
}

[[nodiscard]] absl::Status CopyLogs(const VmState& state,
                                    const LogsRequest& request) {
  const std::string name = request.console ? kConsoleLog : kContainerLog;
  const std::string path = absl::StrCat(state.dir(), "/", name);
  const std::string older = absl::StrCat(path, ".1");
  if (absl::StatusOr<UniqueFd> rotated = OpenFd(older, O_RDONLY);
      rotated.ok()) {
    (void)WriteAll(request.note_fd,
                   absl::StrCat("fcvm: ", state.name(), ": ",
                                LogLimitsText(state.log_max_bytes()), "\n"),
                   "stderr");
    RETURN_IF_ERROR(Drain(rotated->get(), request.out_fd));
  }
  absl::StatusOr<UniqueFd> log = OpenFd(path, O_RDONLY);
  if (!log.ok()) {
    if (absl::IsNotFound(log.status())) {
      return absl::NotFoundError(absl::StrCat("VM '", state.name(), "' has no ",
                                              name,
                                              " yet (it has not started)"));
    }
    return log.status();
  }
  RETURN_IF_ERROR(Drain(log->get(), request.out_fd));
  if (!request.follow) return absl::OkStatus();

  // Follow: wake on writes to the directory's logs (and the rotation that
  // starts a new file), and on the owner's end.
  UniqueFd watch(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!watch.valid()) return ErrnoStatus("inotify_init1");
  if (inotify_add_watch(watch.get(), state.dir().c_str(),
                        IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
    return ErrnoStatus(absl::StrCat("inotify on ", state.dir()));
  }
  ASSIGN_OR_RETURN(
      std::optional<ProcessRef> owner,
      ProcessRef::Open(state.supervisor_pid(), state.supervisor_start_ticks()));
  for (;;) {
    RETURN_IF_ERROR(Drain(log->get(), request.out_fd));
    // Rotated: the old file is complete; go on with the new one.
    if (absl::StatusOr<UniqueFd> now = OpenFd(path, O_RDONLY);
        now.ok() && Inode(now->get()) != Inode(log->get())) {
      RETURN_IF_ERROR(Drain(log->get(), request.out_fd));
      log = std::move(now);
      continue;
    }
    const bool alive = owner.has_value()
                           ? !owner->WaitForExit(absl::ZeroDuration())
                           : Lease::Held(state.dir());
    if (!alive) return Drain(log->get(), request.out_fd);
    pollfd fds[2] = {{watch.get(), POLLIN, 0},
                     {owner.has_value() ? owner->fd() : -1, POLLIN, 0}};
    // Without a recorded owner (still being created), look again each
    // second.
    const int n =
        poll(fds, owner.has_value() ? 2 : 1, owner.has_value() ? -1 : 1000);
    if (n < 0 && errno != EINTR) return ErrnoStatus("poll");
    char events[4096];
    while (read(watch.get(), events, sizeof(events)) > 0) {
    }
  }
}

}  // namespace fcvm::runner
