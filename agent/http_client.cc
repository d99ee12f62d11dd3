#include "agent/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/eintr.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::agent {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
[[nodiscard]] absl::Status WaitFd(int fd, short events, absl::Time deadline,
                                  absl::string_view what) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    }
    pollfd pfd = {fd, events, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    const int n = poll(&pfd, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(what);
    if (n > 0) return absl::OkStatus();
  }
}

// Errors a retry may cure, as UNAVAILABLE; the rest as they are.
[[nodiscard]] absl::Status ConnectError(int error, absl::string_view what) {
  switch (error) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EADDRNOTAVAIL:
    case ETIMEDOUT:
      return absl::UnavailableError(
          absl::StrCat(what, ": ", std::strerror(error)));
    default:
      return ErrnoStatus(error, what);
  }
}

// The body length once the header block is complete: Content-Length, or
// nullopt for "read to the end" (or when the headers are not all here yet).
std::optional<size_t> CompleteLength(absl::string_view raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == absl::string_view::npos) return std::nullopt;
  for (absl::string_view line :
       absl::StrSplit(raw.substr(0, end), "\r\n", absl::SkipEmpty())) {
    std::vector<absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    size_t length = 0;
    if (kv.size() == 2 &&
        absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(kv[0]),
                               "content-length") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[1]), &length)) {
      return end + 4 + length;
    }
  }
  return std::nullopt;
}

[[nodiscard]] absl::StatusOr<UniqueFd> Connect(const HttpEndpoint& endpoint,
                                               absl::Time deadline,
                                               absl::string_view what) {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(endpoint.port);
  if (inet_pton(AF_INET, endpoint.ip.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", endpoint.ip, "' is not an IPv4 address"));
  }
  UniqueFd socket_fd(
      socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!socket_fd) return ErrnoStatus(absl::StrCat(what, ": socket"));
  if (connect(socket_fd.get(), reinterpret_cast<sockaddr*>(&address),
              sizeof(address)) != 0) {
    if (errno != EINPROGRESS) return ConnectError(errno, what);
    RETURN_IF_ERROR(WaitFd(socket_fd.get(), POLLOUT, deadline,
                           absl::StrCat(what, ": connect")));
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(socket_fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) return ConnectError(error, what);
  }
  return socket_fd;
}

}  // namespace

[[nodiscard]] absl::Status ProbeTcp(const HttpEndpoint& endpoint,
                                    absl::Duration timeout) {
  return Connect(endpoint, absl::Now() + timeout,
                 absl::StrCat("connect ", endpoint.ip, ":", endpoint.port))
      .status();
}

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

[[nodiscard]] absl::StatusOr<HttpResponse> ParseHttpResponse(
    absl::string_view raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == absl::string_view::npos) {
    return absl::DataLossError("HTTP response ends inside its headers");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(raw.substr(0, end), "\r\n");
  // "HTTP/1.1 200 OK"
  std::vector<absl::string_view> status_line =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpResponse response;
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      status_line[1].size() != 3 ||
      !absl::SimpleAtoi(status_line[1], &response.status) ||
      response.status < 100) {
    return absl::DataLossError(absl::StrCat("bad HTTP status line '",
                                            absl::CHexEscape(lines[0]), "'"));
  }
  std::optional<size_t> content_length;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> kv =
        absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::DataLossError(absl::StrCat("bad HTTP header line '",
                                              absl::CHexEscape(lines[i]), "'"));
    }
    std::string key(absl::StripAsciiWhitespace(kv[0]));
    std::string value(absl::StripAsciiWhitespace(kv[1]));
    if (absl::EqualsIgnoreCase(key, "content-length")) {
      size_t length = 0;
      if (!absl::SimpleAtoi(value, &length)) {
        return absl::DataLossError(
            absl::StrCat("bad Content-Length '", value, "'"));
      }
      content_length = length;
    }
    response.headers.emplace_back(std::move(key), std::move(value));
  }
  absl::string_view body = raw.substr(end + 4);
  if (content_length.has_value()) {
    if (body.size() < *content_length) {
      return absl::DataLossError(absl::StrCat("HTTP body is ", body.size(),
                                              " bytes, Content-Length ",
                                              *content_length));
    }
    body = body.substr(0, *content_length);
  }
  response.body = std::string(body);
  return response;
}

[[nodiscard]] absl::StatusOr<HttpResponse> HttpCall(
    const HttpEndpoint& endpoint, const HttpRequest& request,
    absl::Duration timeout) {
  const std::string what = absl::StrCat(request.method, " http://", endpoint.ip,
                                        ":", endpoint.port, request.path);
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(UniqueFd socket_fd, Connect(endpoint, deadline, what));

  std::string wire = absl::StrCat(request.method, " ", request.path,
                                  " HTTP/1.1\r\nHost: ", endpoint.ip,
                                  "\r\nConnection: close\r\n");
  for (const auto& [key, value] : request.headers) {
    absl::StrAppend(&wire, key, ": ", value, "\r\n");
  }
  if (!request.body.empty() || request.method == "PUT" ||
      request.method == "POST" || request.method == "PATCH") {
    absl::StrAppend(&wire, "Content-Length: ", request.body.size(), "\r\n");
  }
  absl::StrAppend(&wire, "\r\n", request.body);
  absl::string_view pending = wire;
  while (!pending.empty()) {
    RETURN_IF_ERROR(WaitFd(socket_fd.get(), POLLOUT, deadline,
                           absl::StrCat(what, ": send")));
    const ssize_t n = RetryEintr([&] {
      return send(socket_fd.get(), pending.data(), pending.size(),
                  MSG_NOSIGNAL);
    });
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0) return ConnectError(errno, absl::StrCat(what, ": send"));
    pending.remove_prefix(n);
  }

  // Until the server closes or Content-Length bytes of body are here.
  std::string raw;
  for (;;) {
    std::optional<size_t> complete = CompleteLength(raw);
    if (complete.has_value() && raw.size() >= *complete) break;
    RETURN_IF_ERROR(WaitFd(socket_fd.get(), POLLIN, deadline,
                           absl::StrCat(what, ": waiting for the response")));
    char buffer[16384];
    const ssize_t n = RetryEintr(
        [&] { return recv(socket_fd.get(), buffer, sizeof(buffer), 0); });
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0) return ConnectError(errno, absl::StrCat(what, ": recv"));
    if (n == 0) break;
    raw.append(buffer, n);
    if (raw.size() > kMaxHttpResponseBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, ": response larger than ", kMaxHttpResponseBytes, " bytes"));
    }
  }
  if (raw.empty()) {
    return absl::UnavailableError(
        absl::StrCat(what, ": connection closed without a response"));
  }
  absl::StatusOr<HttpResponse> response = ParseHttpResponse(raw);
  if (!response.ok()) return Annotate(response.status(), what);
  return response;
}

}  // namespace fcvm::agent
