#include "base/unix_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"

namespace fcvm {
namespace {

absl::StatusOr<sockaddr_un> Address(const std::string& path,
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

absl::StatusOr<UniqueFd> ConnectUnixStream(const std::string& path,
                                           absl::string_view what) {
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

absl::StatusOr<UniqueFd> ConnectUnixStreamWhenReady(const std::string& path,
                                                    absl::string_view what,
                                                    absl::Duration timeout) {
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

absl::StatusOr<UniqueFd> ListenUnixStream(const std::string& path, int mode,
                                          absl::string_view what) {
  ASSIGN_OR_RETURN(sockaddr_un address, Address(path, what));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(absl::StrCat(what, ": socket"));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(
          what, ": ", path, " exists and is not a socket; not replacing it"));
    }
    unlink(path.c_str());
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
  if (listen(fd.get(), SOMAXCONN) != 0) {
    return ErrnoStatus(absl::StrCat(what, ": listen on ", path));
  }
  return fd;
}

}  // namespace fcvm
