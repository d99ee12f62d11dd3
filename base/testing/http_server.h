#ifndef FCVM_BASE_TESTING_HTTP_SERVER_H_
#define FCVM_BASE_TESTING_HTTP_SERVER_H_

// A small HTTP/1.1 server for tests, on 127.0.0.1 or another local address
// (ephemeral port) or a
// Unix socket: one connection at a time, one request per connection (the
// answer says Connection: close), bodies by Content-Length. Tests give it
// a handler; real HTTP over a real socket, so the client under test is
// exercised as in production.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::testing {

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;

  std::string Header(const std::string& lower_name) const;
};

struct HttpAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class HttpTestServer {
 public:
  using Handler = std::function<HttpAnswer(const HttpRequest&)>;

  // `port` 0: an ephemeral one. `device`: bound to that network device
  // (SO_BINDTODEVICE), so one address can be served on several devices.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpTestServer>> StartTcp(
      Handler handler, const std::string& ip = "127.0.0.1", uint16_t port = 0,
      const std::string& device = "");
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpTestServer>>
  StartUnix(const std::string& path, Handler handler);
  // Stops serving; a request in progress is finished first.
  ~HttpTestServer();

  uint16_t port() const { return port_; }  // TCP only.

 private:
  HttpTestServer(UniqueFd listener, Pipe wake, uint16_t port, Handler handler);
  void Serve();
  void Handle(int fd);

  UniqueFd listener_;
  Pipe wake_;
  uint16_t port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace fcvm::testing

#endif  // FCVM_BASE_TESTING_HTTP_SERVER_H_
