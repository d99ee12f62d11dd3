#include "base/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm {

[[nodiscard]] absl::StatusOr<uint16_t> FreeLoopbackPort(uint16_t wanted,
                                                        bool udp) {
  absl::Status last = absl::OkStatus();
  for (uint16_t port : {wanted >= 1024 ? wanted : uint16_t{0}, uint16_t{0}}) {
    UniqueFd fd(
        socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoStatus("socket");
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    socklen_t length = sizeof(address);
    // sockaddr_in is the sockaddr of an AF_INET socket.
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address),
             sizeof(address)) != 0) {
      last = ErrnoStatus("bind 127.0.0.1");
      continue;
    }
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) !=
        0) {
      return ErrnoStatus("getsockname");
    }
    return ntohs(address.sin_port);
  }
  return last;
}

}  // namespace fcvm
