#include "base/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

// Binds 127.0.0.1:`port` (TCP, listening); invalid fd if it cannot.
UniqueFd Hold(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
          0 ||
      listen(fd.get(), 1) != 0) {
    return UniqueFd();
  }
  return fd;
}

TEST(FreePortTest, TheWantedPortWhenFreeElseAnother) {
  absl::StatusOr<uint16_t> any = FreeLoopbackPort();
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_GT(*any, 0);
  EXPECT_TRUE(Hold(*any).valid()) << "the port given was not free";
  // Wanted and free: that one.
  EXPECT_EQ(*FreeLoopbackPort(*any), *any);
  // Wanted but taken: another.
  UniqueFd held = Hold(*any);
  ASSERT_TRUE(held.valid());
  absl::StatusOr<uint16_t> other = FreeLoopbackPort(*any);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *any);
  // Privileged ports are never handed out by wish.
  EXPECT_NE(*FreeLoopbackPort(80), 80);
  EXPECT_TRUE(FreeLoopbackPort(0, /*udp=*/true).ok());
}

}  // namespace
}  // namespace fcvm
