#ifndef FCVM_BASE_UNIX_SOCKET_H_
#define FCVM_BASE_UNIX_SOCKET_H_

// Unix stream sockets by path: the VMMs' control sockets (QMP, Firecracker's
// API), slirp4netns's API, the memory server's handshake.

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm {

// Connects to the stream socket at `path` (close-on-exec, blocking). Errors
// name `what` and the path ("connect to QMP at /run/x/qmp.sock: ...").
[[nodiscard]] absl::StatusOr<UniqueFd> ConnectUnixStream(
    const std::string& path, absl::string_view what);

// The same, retrying (2 ms, doubling to 100 ms) while the socket is not
// there yet or not listening, until `timeout`: for a socket a process just
// started will create.
[[nodiscard]] absl::StatusOr<UniqueFd> ConnectUnixStreamWhenReady(
    const std::string& path, absl::string_view what, absl::Duration timeout);

// Which file a listener bound (device and inode), so that its owner removes
// the path later only if it still names that socket.
struct SocketFileId {
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens on `path`, the socket file created with `mode` from the
// start (the umask is set for the bind: call this before threads that
// create files). A socket already at `path` is probed first: if nothing
// listens there (ECONNREFUSED) it is stale and replaced; if something does,
// AlreadyExists ("another server listens on PATH"), and it is left alone.
// Any other file there is refused. `bound`, if given, receives the new
// socket file's identity.
[[nodiscard]] absl::StatusOr<UniqueFd> ListenUnixStream(
    const std::string& path, int mode, absl::string_view what,
    SocketFileId* bound = nullptr);

// Removes the socket file at `path` if it is still `id` and nothing listens
// on it: call it once the listener is closed. A file another process has
// put there since (a later server) is left alone, even one that got the
// same inode number. Returns whether it removed it (false also when
// `path` is gone already).
[[nodiscard]] absl::StatusOr<bool> RemoveUnixSocketIfSame(
    const std::string& path, SocketFileId id);

}  // namespace fcvm

#endif  // FCVM_BASE_UNIX_SOCKET_H_
