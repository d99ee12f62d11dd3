#ifndef FCVM_RUNNER_API_LISTEN_H_
#define FCVM_RUNNER_API_LISTEN_H_

// Where `fcvm api` listens (--api-listen, --sandbox-listen): "HOST:PORT"
// ("[V6]:PORT" for IPv6) or "unix:PATH", and the listening socket itself.
// Loopback only unless the operator says otherwise: the API speaks plain
// HTTP, so anything beyond this machine needs --allow-remote and a TLS
// proxy of the operator's in front.

#include <sys/un.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"

namespace fcvm::runner::api {

struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;   // kTcp: a numeric address, or "localhost".
  uint16_t port = 0;  // kTcp: 0 picks a free port (tests).
  std::string path;   // kUnix.

  // As given back to a user: "127.0.0.1:3000", "[::1]:3000", "unix:/x".
  std::string ToString() const;
  // kUnix, or a host in 127.0.0.0/8, ::1 or "localhost".
  bool IsLoopback() const;
};

// `value` of the flag `flag` (named in errors, e.g. "--api-listen").
[[nodiscard]] absl::StatusOr<ListenAddress> ParseListenAddress(
    absl::string_view value, absl::string_view flag);

// A bound, listening socket (non-blocking, close-on-exec) and what it is.
struct Listener {
  UniqueFd fd;
  ListenAddress address;     // The port filled in when 0 was asked for.
  SocketFileId socket_file;  // kUnix: the socket file this listener made.
};

// Binds `address`. A non-loopback address is refused (naming `flag` and
// --allow-remote) unless `allow_remote`. A Unix socket is created 0600; a
// stale one (nothing listening) is replaced, a live one or any other file
// refused (base/unix_socket.h).
[[nodiscard]] absl::StatusOr<Listener> Listen(const ListenAddress& address,
                                              absl::string_view flag,
                                              bool allow_remote);

// Removes a Unix listener's socket file once its fd is closed (if it is
// still the one it made). Nothing for TCP.
void RemoveSocketFile(const Listener& listener);

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_LISTEN_H_
