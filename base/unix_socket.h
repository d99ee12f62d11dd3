#ifndef FCVM_BASE_UNIX_SOCKET_H_
#define FCVM_BASE_UNIX_SOCKET_H_

// Unix stream sockets by path: the VMMs' control sockets (QMP, Firecracker's
// API), slirp4netns's API, the memory server's handshake.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm {

// Connects to the stream socket at `path` (close-on-exec, blocking). Errors
// name `what` and the path ("connect to QMP at /run/x/qmp.sock: ...").
absl::StatusOr<UniqueFd> ConnectUnixStream(const std::string& path,
                                           absl::string_view what);

// The same, retrying (2 ms, doubling to 100 ms) while the socket is not
// there yet or not listening, until `timeout`: for a socket a process just
// started will create.
absl::StatusOr<UniqueFd> ConnectUnixStreamWhenReady(const std::string& path,
                                                    absl::string_view what,
                                                    absl::Duration timeout);

// Binds and listens on `path` (a stale socket there is replaced; any other
// file is refused), the socket file created with `mode` from the start (the
// umask is set for the bind: call this before threads that create files).
absl::StatusOr<UniqueFd> ListenUnixStream(const std::string& path, int mode,
                                          absl::string_view what);

}  // namespace fcvm

#endif  // FCVM_BASE_UNIX_SOCKET_H_
