#include "base/testing/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace fcvm::testing {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Status";
  }
}

// Reads until `done` says the buffer holds enough; false on EOF, error or
// 5 s of silence.
bool ReadUntil(int fd, std::string& buffer, const std::function<bool()>& done) {
  char chunk[4096];
  while (!done()) {
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) <= 0) return false;
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer.append(chunk, n);
  }
  return true;
}

}  // namespace

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<HttpTestServer>>
HttpTestServer::StartTcp(Handler handler, const std::string& ip, uint16_t port,
                         const std::string& device) {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return ErrnoStatus("socket");
  if (!device.empty() &&
      setsockopt(listener.get(), SOL_SOCKET, SO_BINDTODEVICE, device.data(),
                 static_cast<socklen_t>(device.size())) != 0) {
    return ErrnoStatus(absl::StrCat("SO_BINDTODEVICE ", device));
  }
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IPv4 address: ", ip));
  }
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
           sizeof(address)) != 0 ||
      listen(listener.get(), 16) != 0) {
    return ErrnoStatus(absl::StrCat("bind/listen on ", ip));
  }
  socklen_t length = sizeof(address);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  ASSIGN_OR_RETURN(Pipe wake, MakePipe());
  return std::unique_ptr<HttpTestServer>(
      new HttpTestServer(std::move(listener), std::move(wake),
                         ntohs(address.sin_port), std::move(handler)));
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<HttpTestServer>>
HttpTestServer::StartUnix(const std::string& path, Handler handler) {
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path too long: ", path));
  }
  path.copy(address.sun_path, path.size());
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return ErrnoStatus("socket");
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
           sizeof(address)) != 0 ||
      listen(listener.get(), 16) != 0) {
    return ErrnoStatus(absl::StrCat("bind/listen on ", path));
  }
  ASSIGN_OR_RETURN(Pipe wake, MakePipe());
  return std::unique_ptr<HttpTestServer>(new HttpTestServer(
      std::move(listener), std::move(wake), 0, std::move(handler)));
}

HttpTestServer::HttpTestServer(UniqueFd listener, Pipe wake, uint16_t port,
                               Handler handler)
    : listener_(std::move(listener)),
      wake_(std::move(wake)),
      port_(port),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] { Serve(); });
}

HttpTestServer::~HttpTestServer() {
  wake_.write.reset();  // EOF on wake_.read ends Serve().
  thread_.join();
}

void HttpTestServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0},
                     {wake_.read.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client) Handle(client.get());
  }
}

void HttpTestServer::Handle(int fd) {
  std::string raw;
  if (!ReadUntil(fd, raw,
                 [&] { return raw.find("\r\n\r\n") != std::string::npos; })) {
    return;
  }
  const size_t head_end = raw.find("\r\n\r\n");
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(raw).substr(0, head_end), "\r\n");
  std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
  HttpAnswer answer;
  HttpRequest request;
  if (first.size() != 3) {
    answer = {400, "bad request line"};
  } else {
    request.method = std::string(first[0]);
    request.path = std::string(first[1]);
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<absl::string_view> kv =
          absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
      if (kv.size() != 2) continue;
      request
          .headers[absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv[0]))] =
          std::string(absl::StripAsciiWhitespace(kv[1]));
    }
    size_t length = 0;
    (void)absl::SimpleAtoi(request.Header("content-length"), &length);
    if (!ReadUntil(fd, raw,
                   [&] { return raw.size() >= head_end + 4 + length; })) {
      return;
    }
    request.body = raw.substr(head_end + 4, length);
    answer = handler_(request);
  }
  const std::string response = absl::StrCat(
      "HTTP/1.1 ", answer.status, " ", Reason(answer.status),
      "\r\nContent-Type: ", answer.content_type,
      "\r\nConnection: close\r\nContent-Length: ", answer.body.size(),
      "\r\n\r\n", answer.body);
  (void)WriteAll(fd, response, "response");
}

}  // namespace fcvm::testing
