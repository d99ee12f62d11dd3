#include "runner/api/listen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::runner::api {
namespace {

constexpr absl::string_view kUnixPrefix = "unix:";

// IPv4 or IPv6 socket address of a numeric host ("localhost" is 127.0.0.1).
bool ToSockaddr(const std::string& host, uint16_t port, sockaddr_storage* ss,
                socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  const std::string numeric = host == "localhost" ? "127.0.0.1" : host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, numeric.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(*v4);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, numeric.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof(*v6);
    return true;
  }
  return false;
}

}  // namespace

std::string ListenAddress::ToString() const {
  if (kind == Kind::kUnix) return absl::StrCat(kUnixPrefix, path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool ListenAddress::IsLoopback() const {
  if (kind == Kind::kUnix || host == "localhost") return true;
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(host, 0, &ss, &len)) return false;
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view value,
                                                 absl::string_view flag) {
  ListenAddress address;
  if (absl::StartsWith(value, kUnixPrefix)) {
    address.kind = ListenAddress::Kind::kUnix;
    address.path = std::string(value.substr(kUnixPrefix.size()));
    if (address.path.empty() || address.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " ", value,
                       ": a Unix socket needs an absolute path "
                       "(unix:/run/fcvm/api.sock)"));
    }
    if (address.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " ", value, ": the path is longer than a Unix socket's ",
          sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
    }
    return address;
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(value, "[")) {
    const size_t close = value.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " ", value, ": an IPv6 address is written [ADDRESS]:PORT"));
    }
    host = value.substr(1, close - 1);
    port = value.substr(close + 2);
  } else {
    const size_t colon = value.rfind(':');
    if (colon == absl::string_view::npos || value.find(':') != colon) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " ", value, ": expected HOST:PORT, [IPV6]:PORT or unix:PATH"));
    }
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
  }
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", value, ": the port must be a number from 0 to 65535"));
  }
  address.host = std::string(host);
  address.port = static_cast<uint16_t>(port_number);
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(address.host, address.port, &ss, &len)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", value,
                     ": the host must be a numeric address or "
                     "localhost (names are not looked up)"));
  }
  return address;
}

absl::StatusOr<Listener> Listen(const ListenAddress& address,
                                absl::string_view flag, bool allow_remote) {
  if (!address.IsLoopback() && !allow_remote) {
    return absl::PermissionDeniedError(absl::StrCat(
        flag, " ", address.ToString(),
        " is not a loopback address: the API speaks plain HTTP; pass "
        "--allow-remote to listen there anyway (TLS is then the job of a "
        "proxy of yours in front of it)"));
  }
  Listener listener;
  listener.address = address;
  if (address.kind == ListenAddress::Kind::kUnix) {
    ASSIGN_OR_RETURN(
        listener.fd,
        ListenUnixStream(address.path, 0600, absl::StrCat(flag, " socket"),
                         &listener.socket_file));
  } else {
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(address.host, address.port, &ss, &len)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " ", address.ToString(), ": not an address"));
    }
    listener.fd = UniqueFd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener.fd) {
      return absl::ErrnoToStatus(errno, absl::StrCat(flag, ": socket"));
    }
    const int one = 1;
    setsockopt(listener.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
      // [::1] means IPv6 only; "::" (with --allow-remote) too: say
      // 0.0.0.0 for IPv4.
      setsockopt(listener.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one,
                 sizeof(one));
    }
    if (bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat(flag, " ", address.ToString(), ": bind"));
    }
    if (listen(listener.fd.get(), 128) != 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat(flag, " ", address.ToString(), ": listen"));
    }
    sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (getsockname(listener.fd.get(), reinterpret_cast<sockaddr*>(&bound),
                    &bound_len) == 0) {
      listener.address.port =
          bound.ss_family == AF_INET
              ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
              : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    }
  }
  const int flags = fcntl(listener.fd.get(), F_GETFL);
  if (flags < 0 || fcntl(listener.fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(flag, ": fcntl"));
  }
  return listener;
}

void RemoveSocketFile(const Listener& listener) {
  if (listener.address.kind != ListenAddress::Kind::kUnix) return;
  (void)RemoveUnixSocketIfSame(listener.address.path, listener.socket_file);
}

}  // namespace fcvm::runner::api
