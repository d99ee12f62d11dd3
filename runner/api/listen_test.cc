#include "runner/api/listen.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fcvm::runner::api {
namespace {

// TEST_TMPDIR is too long for a socket's path (108 bytes).
std::string ShortTempDir() {
  char dir[] = "/tmp/fcvm-listen-test.XXXXXX";
  return mkdtemp(dir) != nullptr ? dir : "";
}

TEST(ParseListenAddress, TcpUnixAndIpv6) {
  auto tcp = ParseListenAddress("127.0.0.1:3000", "--api-listen");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(tcp->kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 3000);
  EXPECT_EQ(tcp->ToString(), "127.0.0.1:3000");
  EXPECT_TRUE(tcp->IsLoopback());

  auto v6 = ParseListenAddress("[::1]:49983", "--sandbox-listen");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:49983");
  EXPECT_TRUE(v6->IsLoopback());

  auto unix_socket =
      ParseListenAddress("unix:/run/fcvm/api.sock", "--api-listen");
  ASSERT_TRUE(unix_socket.ok()) << unix_socket.status();
  EXPECT_EQ(unix_socket->kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(unix_socket->path, "/run/fcvm/api.sock");
  EXPECT_EQ(unix_socket->ToString(), "unix:/run/fcvm/api.sock");

  auto local = ParseListenAddress("localhost:0", "--api-listen");
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(local->IsLoopback());
  EXPECT_TRUE(ParseListenAddress("127.9.9.9:1", "f")->IsLoopback());
  EXPECT_FALSE(ParseListenAddress("0.0.0.0:3000", "f")->IsLoopback());
  EXPECT_FALSE(ParseListenAddress("10.1.2.3:3000", "f")->IsLoopback());
  EXPECT_FALSE(ParseListenAddress("[::]:3000", "f")->IsLoopback());
}

TEST(ParseListenAddress, BadValuesNameTheFlagAndTheCause) {
  struct Case {
    const char* value;
    const char* says;
  };
  for (const Case& c : {
           Case{"3000", "expected HOST:PORT"},
           Case{"127.0.0.1:", "port must be a number"},
           Case{"127.0.0.1:70000", "port must be a number"},
           Case{"127.0.0.1:http", "port must be a number"},
           Case{"example:3000", "numeric address or localhost"},
           Case{"::1:3000", "expected HOST:PORT"},
           Case{"[::1:3000", "[ADDRESS]:PORT"},
           Case{"unix:relative.sock", "absolute path"},
           Case{"unix:", "absolute path"},
       }) {
    auto parsed = ParseListenAddress(c.value, "--api-listen");
    ASSERT_FALSE(parsed.ok()) << c.value;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--api-listen"))
        << parsed.status();
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), c.says))
        << c.value << ": " << parsed.status();
  }
  auto long_path = ParseListenAddress(
      absl::StrCat("unix:/", std::string(200, 'x')), "--api-listen");
  ASSERT_FALSE(long_path.ok());
  EXPECT_TRUE(absl::StrContains(long_path.status().message(), "longer"));
}

TEST(Listen, RemoteNeedsAllowRemote) {
  auto any = ParseListenAddress("0.0.0.0:0", "--api-listen");
  ASSERT_TRUE(any.ok());
  auto refused = Listen(*any, "--api-listen", /*allow_remote=*/false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "--allow-remote"));
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "TLS"));
  auto allowed = Listen(*any, "--api-listen", /*allow_remote=*/true);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_NE(allowed->address.port, 0);
}

TEST(Listen, LoopbackPortZeroGetsAPort) {
  auto address = ParseListenAddress("127.0.0.1:0", "--api-listen");
  ASSERT_TRUE(address.ok());
  auto listener = Listen(*address, "--api-listen", false);
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_NE(listener->address.port, 0);
  // The port is taken: a second listener on it fails, naming it.
  auto again = Listen(listener->address, "--api-listen", false);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(absl::StrContains(again.status().message(),
                                listener->address.ToString()));
}

TEST(Listen, UnixSocketIs0600AndRemovedAfter) {
  const std::string dir = ShortTempDir();
  const std::string path = dir + "/api.sock";
  auto address = ParseListenAddress("unix:" + path, "--api-listen");
  ASSERT_TRUE(address.ok());
  auto listener = Listen(*address, "--api-listen", false);
  ASSERT_TRUE(listener.ok()) << listener.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  // A second server on the same path is refused while the first listens.
  auto second = Listen(*address, "--api-listen", false);
  EXPECT_FALSE(second.ok());
  listener->fd.reset();
  RemoveSocketFile(*listener);
  EXPECT_NE(stat(path.c_str(), &st), 0);
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace fcvm::runner::api
