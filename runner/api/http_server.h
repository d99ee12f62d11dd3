#ifndef FCVM_RUNNER_API_HTTP_SERVER_H_
#define FCVM_RUNNER_API_HTTP_SERVER_H_

// The HTTP/1.1 server under `fcvm api`: GNU libmicrohttpd (Debian's
// libmicrohttpd12), one thread per connection.
//
// Why this library (of cpp-httplib 0.11.4, Boost.Beast 1.74, civetweb 1.15
// and libmicrohttpd 0.9.75, the candidates Debian 12 has):
// - It takes a listening socket we made (MHD_OPTION_LISTEN_SOCKET), so
//   "unix:PATH" works as well as TCP; Debian's cpp-httplib 0.11.4 binds
//   TCP only.
// - It de-chunks request bodies (the E2B SDK sends every POST chunked) and
//   writes a response of unknown length chunked, one chunk per read of the
//   body's source, which is what a stream of Connect envelopes needs.
// - It bounds what a client can hold: connections (MHD_OPTION_CONNECTION_
//   LIMIT), header bytes (MHD_OPTION_CONNECTION_MEMORY_LIMIT), idle time
//   (MHD_OPTION_CONNECTION_TIMEOUT); bodies are bounded here.
// - One thread per connection lets a streaming body block in its source
//   (a command's output) without a callback state machine; threads are
//   bounded by the connection limit. Beast would scale past thousands of
//   streams with less memory, at the cost of an async state machine for
//   every handler: a later step if the numbers call for it.
// It is LGPL-2.1+, linked dynamically (//third_party/microhttpd).

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runner/api/listen.h"

struct MHD_Daemon;

namespace fcvm::runner::api {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // Percent-decoded, without the query.
  HeaderList headers;  // Names lower-cased, in the order received.
  HeaderList query;    // Percent-decoded arguments of the query string.
  std::string body;    // De-chunked; at most ServerOptions::max_body_bytes.
  std::string peer;    // "127.0.0.1:41234", "unix", for logs.

  // The first header named `name` (lower case), or nullptr.
  const std::string* Header(absl::string_view name) const;
  // The first query argument `name`, or nullptr.
  const std::string* Query(absl::string_view name) const;
};

// A response body produced while it is sent (chunked): Next() is called on
// the connection's thread whenever the previous bytes were written, and may
// wait for more (a command's output). It should return within the
// keep-alive interval of its protocol even with nothing to say, with
// nothing appended, so that a stopping server and a client that left are
// noticed. The source is destroyed when the response ends, the client
// went away or the server stops: that is its cue to let go of what it
// holds.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Appends the next bytes to `out` (possibly none) and returns true, or
  // returns false at the end of the body. An error aborts the response
  // (the client sees the chunked body cut short).
  [[nodiscard]] virtual absl::StatusOr<bool> Next(std::string* out) = 0;
};

struct Response {
  int status = 200;
  HeaderList headers;
  std::string body;
  // If set, the body is this source's, sent chunked; `body` is ignored.
  std::unique_ptr<BodySource> stream;

  static Response Bytes(int status, std::string content_type, std::string body);
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string name = "api";  // In log lines: "fcvm api (NAME): ...".
  size_t max_body_bytes = 64 << 20;
  unsigned max_connections = 512;
  // Header and request-line bytes a connection may use; beyond, 431.
  size_t max_header_bytes = 64 << 10;
  // A connection that sends and receives nothing this long is closed.
  absl::Duration idle_timeout = absl::Seconds(90);
  // The response to a request the server refuses itself (413: a body over
  // max_body_bytes), in the protocol's error shape. Default: text/plain.
  std::function<Response(int status, const std::string& message)>
      error_response;
  // Log lines (errors of the library, refused requests). Default: stderr.
  std::function<void(const std::string&)> log;
};

class HttpServer {
 public:
  // Serves `listener` (taken over) with `handler` from now on; `handler`
  // is called on many threads at once.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      Listener listener, Handler handler, ServerOptions options);

  // Stops accepting, ends every connection (streaming bodies at their
  // next Next()), and removes a Unix socket file it made.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const ListenAddress& address() const { return address_; }
  // Whether Stop has begun: streaming sources may check it between waits.
  bool stopping() const { return stopping_.load(); }

  // Internal: the library's callbacks reach these.
  struct Context;

 private:
  HttpServer() = default;

  ListenAddress address_;
  Listener socket_file_owner_;  // Only its path and identity: fd released.
  std::unique_ptr<Context> context_;
  MHD_Daemon* daemon_ = nullptr;
  std::atomic<bool> stopping_{false};
};

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_HTTP_SERVER_H_
