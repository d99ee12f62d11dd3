// tcp_bridge HOST PORT: connects to HOST:PORT and copies stdin to the
// connection and the connection to stdout until both sides are done. QEMU's
// user-mode network runs it for each guest connection to a guestfwd
// address, so a guest reaches a server of the test on loopback (the fake
// MMDS at 169.254.169.254).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) return 2;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address),
                        sizeof(address)) != 0) {
    std::perror("tcp_bridge: connect");
    return 1;
  }
  bool in_open = true, socket_open = true;
  char buffer[16384];
  while (socket_open) {
    pollfd fds[2] = {{in_open ? STDIN_FILENO : -1, POLLIN, 0}, {fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) return 1;
    if (fds[0].revents != 0) {
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n <= 0) {
        in_open = false;
        shutdown(fd, SHUT_WR);
      } else if (write(fd, buffer, n) != n) {
        return 1;
      }
    }
    if (fds[1].revents != 0) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) {
        socket_open = false;
      } else if (write(STDOUT_FILENO, buffer, n) != n) {
        return 1;
      }
    }
  }
  return 0;
}
