#include "runner/api/http_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "gtest/gtest.h"

namespace fcvm::runner::api {
namespace {

UniqueFd ConnectTcp(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  return fd;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n =
        send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // The server may close early (413): fine.
    off += static_cast<size_t>(n);
  }
}

// Reads until `until` appears in what was read, the peer closes, or
// `timeout` passes.
std::string ReadUntil(int fd, absl::string_view until,
                      absl::Duration timeout = absl::Seconds(10)) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!until.empty() && absl::StrContains(got, until)) break;
    pollfd p{fd, POLLIN, 0};
    const int ms =
        static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (poll(&p, 1, ms > 0 ? ms : 0) <= 0) break;
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Whether the peer closed `fd` within `timeout` (data before it ignored).
bool ClosedWithin(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 100};
    if (poll(&p, 1, 100) > 0) {
      char buf[4096];
      if (read(fd, buf, sizeof(buf)) <= 0) return true;
    }
  }
  return false;
}

Response Echo(const Request& request) {
  std::string text = absl::StrCat(request.method, " ", request.path, "\n");
  for (const auto& [k, v] : request.query)
    absl::StrAppend(&text, "q ", k, "=", v, "\n");
  if (const std::string* id = request.Header("e2b-sandbox-id")) {
    absl::StrAppend(&text, "sandbox ", *id, "\n");
  }
  absl::StrAppend(&text, "body ", request.body.size(), " ", request.body);
  return Response::Bytes(200, "text/plain", text);
}

struct Served {
  std::unique_ptr<HttpServer> server;
  uint16_t port = 0;
};

Served Serve(Handler handler, ServerOptions options = {}) {
  auto address = ParseListenAddress("127.0.0.1:0", "--api-listen");
  EXPECT_TRUE(address.ok());
  auto listener = Listen(*address, "--api-listen", false);
  EXPECT_TRUE(listener.ok()) << listener.status();
  options.log = [](const std::string&) {};
  auto server = HttpServer::Start(std::move(*listener), std::move(handler),
                                  std::move(options));
  EXPECT_TRUE(server.ok()) << server.status();
  Served served;
  served.port = (*server)->address().port;
  served.server = std::move(*server);
  return served;
}

std::string Get(uint16_t port, const std::string& target) {
  UniqueFd fd = ConnectTcp(port);
  WriteAll(fd.get(),
           absl::StrCat("GET ", target,
                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  return ReadUntil(fd.get(), "");
}

TEST(HttpServer, HeadersLowerCasedAndQueryDecoded) {
  Served s = Serve(&Echo);
  UniqueFd fd = ConnectTcp(s.port);
  WriteAll(
      fd.get(),
      "GET /files?path=%2Fhome%2Fuser%2Fa%20b.txt&username=user HTTP/1.1\r\n"
      "Host: x\r\nE2b-Sandbox-Id: i123\r\nConnection: close\r\n\r\n");
  const std::string got = ReadUntil(fd.get(), "");
  EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.1 200")) << got;
  EXPECT_TRUE(absl::StrContains(got, "GET /files\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "q path=/home/user/a b.txt\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "q username=user\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "sandbox i123\n")) << got;
}

TEST(HttpServer, ChunkedRequestBodiesAreJoinedAndKeepAliveServesTwo) {
  Served s = Serve(&Echo);
  UniqueFd fd = ConnectTcp(s.port);
  // As undici sends a control-plane POST: chunked, no Content-Length.
  WriteAll(
      fd.get(),
      "POST /v2/sandboxes HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n{\"tem\r\n10\r\nplateID\":\"base\"}\r\n0\r\n\r\n");
  const std::string first =
      ReadUntil(fd.get(), "body 21 {\"templateID\":\"base\"}");
  EXPECT_TRUE(absl::StrContains(first, "body 21 {\"templateID\":\"base\"}"))
      << first;
  // The same connection again, with a Content-Length this time.
  WriteAll(fd.get(),
           "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
           "Connection: close\r\n\r\nabc");
  const std::string second = ReadUntil(fd.get(), "");
  EXPECT_TRUE(absl::StrContains(second, "POST /x\nbody 3 abc")) << second;
}

// A source that hands out `pieces`, waiting before the second for `go`.
class GatedSource : public BodySource {
 public:
  GatedSource(std::vector<std::string> pieces, absl::Notification* go,
              absl::Notification* destroyed)
      : pieces_(std::move(pieces)), go_(go), destroyed_(destroyed) {}
  ~GatedSource() override {
    if (destroyed_ != nullptr) destroyed_->Notify();
  }
  absl::StatusOr<bool> Next(std::string* out) override {
    if (next_ == pieces_.size()) return false;
    if (next_ == 1 &&
        !go_->WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      return true;  // Nothing yet: the server checks the peer, calls again.
    }
    out->append(pieces_[next_++]);
    return true;
  }

 private:
  std::vector<std::string> pieces_;
  size_t next_ = 0;
  absl::Notification* go_;
  absl::Notification* destroyed_;
};

TEST(HttpServer, StreamedBodiesGoOutChunkByChunk) {
  absl::Notification go;
  absl::Notification destroyed;
  Served s = Serve([&](const Request&) {
    Response r;
    r.headers.emplace_back("Content-Type", "application/connect+json");
    r.stream = std::make_unique<GatedSource>(
        std::vector<std::string>{"first-piece", "second-piece"}, &go,
        &destroyed);
    return r;
  });
  UniqueFd fd = ConnectTcp(s.port);
  WriteAll(fd.get(),
           "POST /process.Process/Start HTTP/1.1\r\nHost: x\r\n"
           "Content-Length: 0\r\n\r\n");
  // The first piece arrives while the source still holds back the second.
  const std::string head = ReadUntil(fd.get(), "first-piece");
  EXPECT_TRUE(absl::StrContains(head, "Transfer-Encoding: chunked")) << head;
  EXPECT_TRUE(absl::StrContains(head, "first-piece")) << head;
  EXPECT_FALSE(absl::StrContains(head, "second-piece"));
  go.Notify();
  const std::string rest = ReadUntil(fd.get(), "0\r\n\r\n");
  EXPECT_TRUE(absl::StrContains(rest, "second-piece")) << rest;
  EXPECT_TRUE(absl::StrContains(rest, "0\r\n\r\n")) << rest;
  EXPECT_TRUE(destroyed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(HttpServer, AClientThatLeavesAStreamFreesItsSource) {
  absl::Notification never;
  absl::Notification destroyed;
  Served s = Serve([&](const Request& request) {
    if (request.path != "/s") return Echo(request);
    Response r;
    r.stream = std::make_unique<GatedSource>(
        std::vector<std::string>{"first-piece", "never"}, &never, &destroyed);
    return r;
  });
  {
    UniqueFd fd = ConnectTcp(s.port);
    WriteAll(fd.get(), "GET /s HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(
        absl::StrContains(ReadUntil(fd.get(), "first-piece"), "first-piece"));
  }  // Closed here, mid-stream.
  EXPECT_TRUE(destroyed.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::StartsWith(Get(s.port, "/after"), "HTTP/1.1 200"));
}

TEST(HttpServer, BodiesOverTheLimitAre413AndTheServerGoesOn) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  options.error_response = [](int status, const std::string& message) {
    return Response::Bytes(status, "application/json",
                           absl::StrCat("{\"code\":", status, "}"));
  };
  Served s = Serve(&Echo, options);
  {
    // Declared: refused before the body is read.
    UniqueFd fd = ConnectTcp(s.port);
    WriteAll(fd.get(),
             "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
    const std::string got = ReadUntil(fd.get(), "}");
    EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.1 413")) << got;
    EXPECT_TRUE(absl::StrContains(got, R"("code":413)")) << got;
  }
  {
    // Chunked: refused once it grows past the limit.
    UniqueFd fd = ConnectTcp(s.port);
    std::string request =
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i)
      absl::StrAppend(&request, "190\r\n", std::string(400, 'a'), "\r\n");
    absl::StrAppend(&request, "0\r\n\r\n");
    WriteAll(fd.get(), request);
    const std::string got = ReadUntil(fd.get(), "}");
    EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.1 413")) << got;
    EXPECT_TRUE(absl::StrContains(got, R"("code":413)")) << got;
  }
  {
    UniqueFd fd = ConnectTcp(s.port);
    WriteAll(fd.get(),
             "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
             "Connection: close\r\n\r\n" +
                 std::string(1000, 'b'));
    const std::string got = ReadUntil(fd.get(), "");
    EXPECT_TRUE(absl::StrContains(got, "body 1000 ")) << got.substr(0, 200);
  }
}

TEST(HttpServer, HugeHeadersAreRefusedAndTheServerGoesOn) {
  ServerOptions options;
  options.max_header_bytes = 8 << 10;
  Served s = Serve(&Echo, options);
  UniqueFd fd = ConnectTcp(s.port);
  WriteAll(fd.get(), absl::StrCat("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ",
                                  std::string(20000, 'h'), "\r\n\r\n"));
  const std::string got = ReadUntil(fd.get(), "\r\n");
  EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.1 4")) << got.substr(0, 100);
  EXPECT_TRUE(absl::StartsWith(Get(s.port, "/after"), "HTTP/1.1 200"));
}

TEST(HttpServer, ASlowClientIsCutOffAfterTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = absl::Seconds(1);
  Served s = Serve(&Echo, options);
  UniqueFd slow = ConnectTcp(s.port);
  WriteAll(slow.get(), "GET / HTTP/1.1\r\nHost:");  // ... and nothing more.
  // Meanwhile a good client is served.
  EXPECT_TRUE(absl::StartsWith(Get(s.port, "/good"), "HTTP/1.1 200"));
  EXPECT_TRUE(ClosedWithin(slow.get(), absl::Seconds(5)));
}

TEST(HttpServer, ConnectionsAreBounded) {
  ServerOptions options;
  options.max_connections = 2;
  Served s = Serve(&Echo, options);
  UniqueFd a = ConnectTcp(s.port);
  UniqueFd b = ConnectTcp(s.port);
  // Let the daemon accept both before the third.
  absl::SleepFor(absl::Milliseconds(300));
  UniqueFd c = ConnectTcp(s.port);
  WriteAll(c.get(), "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string third = ReadUntil(c.get(), "", absl::Seconds(2));
  EXPECT_FALSE(absl::StartsWith(third, "HTTP/1.1 200")) << third;
  a.reset();
  b.reset();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(absl::StartsWith(Get(s.port, "/later"), "HTTP/1.1 200"));
}

TEST(HttpServer, ServesAUnixSocketAndRemovesItAtTheEnd) {
  // TEST_TMPDIR is too long for a socket's path (108 bytes).
  char dir[] = "/tmp/fcvm-api-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/api.sock");
  auto address = ParseListenAddress("unix:" + path, "--api-listen");
  ASSERT_TRUE(address.ok());
  auto listener = Listen(*address, "--api-listen", false);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ServerOptions options;
  options.log = [](const std::string&) {};
  auto server = HttpServer::Start(std::move(*listener), &Echo, options);
  ASSERT_TRUE(server.ok()) << server.status();
  {
    auto fd = ConnectUnixStream(path, "api");
    ASSERT_TRUE(fd.ok()) << fd.status();
    WriteAll(fd->get(),
             "GET /over-unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string got = ReadUntil(fd->get(), "");
    EXPECT_TRUE(absl::StrContains(got, "GET /over-unix")) << got;
  }
  server->reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  rmdir(dir);
}

TEST(HttpServer, ManyConcurrentStreamsAndRequests) {
  std::atomic<int> handled{0};
  absl::Notification open;  // Open from the start: each stream runs through.
  open.Notify();
  Served s = Serve([&](const Request& request) {
    ++handled;
    if (request.path == "/stream") {
      Response r;
      r.stream = std::make_unique<GatedSource>(
          std::vector<std::string>{"a", "b", "c"}, &open, nullptr);
      return r;
    }
    return Echo(request);
  });
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&, i] {
      const std::string got = Get(s.port, i % 2 ? "/stream" : "/plain");
      if (absl::StartsWith(got, "HTTP/1.1 200")) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(handled.load(), 100);
}

}  // namespace
}  // namespace fcvm::runner::api
