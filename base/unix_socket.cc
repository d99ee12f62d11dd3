#include "base/unix_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/eintr.h"
#include "base/status.h"

namespace fcvm {
namespace {

[[nodiscard]] absl::StatusOr<sockaddr_un> Address(const std::string& path,
                                                  absl::string_view what) {
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " socket path ", path.empty() ? "empty" : path,
                     path.empty() ? "" : ": longer than 107 bytes"));
  }
  path.copy(address.sun_path, path.size());
  return address;
}

}  // namespace

[[nodiscard]] absl::StatusOr<UniqueFd> ConnectUnixStream(
    const std::string& path, absl::string_view what) {
  ASSIGN_OR_RETURN(sockaddr_un address, Address(path, what));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(absl::StrCat(what, ": socket"));
  int rc;
  do {
    rc = connect(fd.get(), reinterpret_cast<sockaddr*>(&address),
                 sizeof(address));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0)
    return ErrnoStatus(absl::StrCat("connect to ", what, " at ", path));
  return fd;
}

[[nodiscard]] absl::StatusOr<UniqueFd> ConnectUnixStreamWhenReady(
    const std::string& path, absl::string_view what, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(2);
  for (;;) {
    absl::StatusOr<UniqueFd> fd = ConnectUnixStream(path, what);
    // Only "not there yet" and "not listening yet" are worth waiting out.
    const bool retry = !fd.ok() && (absl::IsNotFound(fd.status()) ||
                                    absl::IsUnavailable(fd.status()));
    if (!retry || absl::Now() + pause >= deadline) return fd;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

namespace {

// Whether something listens on the socket file at `path` (a connect
// succeeds, or the backlog is full: both mean a live server). Non-blocking,
// so a full backlog does not stall us.
[[nodiscard]] absl::StatusOr<bool> Listening(const sockaddr_un& address,
                                             const std::string& path,
                                             absl::string_view what) {
  UniqueFd probe(
      socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) return ErrnoStatus(absl::StrCat(what, ": socket"));
  const int rc = RetryEintr([&] {
    return connect(probe.get(), reinterpret_cast<const sockaddr*>(&address),
                   sizeof(address));
  });
  if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) return true;
  // ECONNREFUSED: a socket file nobody listens on (its server is gone).
  // ENOENT: removed since we looked.
  if (errno == ECONNREFUSED || errno == ENOENT) return false;
  return ErrnoStatus(
      absl::StrCat(what, ": probing the existing socket ", path));
}

}  // namespace

[[nodiscard]] absl::StatusOr<UniqueFd> ListenUnixStream(const std::string& path,
                                                        int mode,
                                                        absl::string_view what,
                                                        SocketFileId* bound) {
  ASSIGN_OR_RETURN(sockaddr_un address, Address(path, what));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(absl::StrCat(what, ": socket"));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(
          what, ": ", path, " exists and is not a socket; not replacing it"));
    }
    ASSIGN_OR_RETURN(const bool live, Listening(address, path, what));
    if (live) {
      return absl::AlreadyExistsError(absl::StrCat(
          what, ": another server listens on ", path, "; not replacing it"));
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(
          absl::StrCat(what, ": removing the stale socket ", path));
    }
  }
  // Created with `mode` already: no moment where it is wider. (umask is the
  // process's: call this before starting threads that create files.)
  const mode_t old_umask = umask(~mode & 0777);
  const int rc =
      bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int bind_errno = errno;
  umask(old_umask);
  if (rc != 0) {
    errno = bind_errno;
    return ErrnoStatus(absl::StrCat(what, ": bind ", path));
  }
  if (chmod(path.c_str(), mode) != 0) {
    return ErrnoStatus(absl::StrCat(what, ": chmod ", path));
  }
  if (bound != nullptr) {
    if (lstat(path.c_str(), &st) != 0) {
      return ErrnoStatus(absl::StrCat(what, ": stat ", path));
    }
    bound->dev = st.st_dev;
    bound->ino = st.st_ino;
  }
  if (listen(fd.get(), SOMAXCONN) != 0) {
    return ErrnoStatus(absl::StrCat(what, ": listen on ", path));
  }
  return fd;
}

[[nodiscard]] absl::StatusOr<bool> RemoveUnixSocketIfSame(
    const std::string& path, SocketFileId id) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(absl::StrCat("stat ", path));
  }
  if (!S_ISSOCK(st.st_mode) || st.st_dev != id.dev || st.st_ino != id.ino) {
    return false;
  }
  // Inode numbers are reused: a socket created since ours was removed may
  // have ours. If something listens there, it is not ours (ours is closed).
  ASSIGN_OR_RETURN(sockaddr_un address, Address(path, "socket"));
  ASSIGN_OR_RETURN(const bool live, Listening(address, path, "socket"));
  if (live) return false;
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(absl::StrCat("remove ", path));
  }
  return true;
}

}  // namespace fcvm
