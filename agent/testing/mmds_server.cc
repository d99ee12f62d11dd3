#include "agent/testing/mmds_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/status.h"

namespace fcvm::agent::testing {
namespace {

std::string Answer(int status, absl::string_view reason,
                   absl::string_view body) {
  return absl::StrCat("HTTP/1.1 ", status, " ", reason,
                      "\r\nContent-Type: application/json\r\nContent-Length: ",
                      body.size(), "\r\n\r\n", body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeMmds>> FakeMmds::Start() {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return ErrnoStatus("socket");
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
           sizeof(address)) != 0 ||
      listen(listener.get(), 16) != 0) {
    return ErrnoStatus("bind/listen on 127.0.0.1");
  }
  socklen_t length = sizeof(address);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  ASSIGN_OR_RETURN(Pipe wake, MakePipe());
  return std::unique_ptr<FakeMmds>(
      new FakeMmds(std::move(listener), std::move(wake.read),
                   std::move(wake.write), ntohs(address.sin_port)));
}

FakeMmds::FakeMmds(UniqueFd listener, UniqueFd wake_read, UniqueFd wake_write,
                   uint16_t port)
    : listener_(std::move(listener)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)),
      port_(port) {
  thread_ = std::thread([this] { Serve(); });
}

FakeMmds::~FakeMmds() {
  wake_write_.reset();  // EOF on wake_read_ ends Serve().
  thread_.join();
}

void FakeMmds::Serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0},
                     {wake_read_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client) Handle(client.get());
  }
}

void FakeMmds::Handle(int fd) {
  // Read the request head (our client sends small bodies with a length).
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos) {
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) <= 0) return;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    request.append(buffer, n);
  }
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = delay_;
  }
  absl::SleepFor(delay);
  const std::string response = Respond(request);
  (void)WriteAll(fd, response, "response");
}

std::string FakeMmds::Respond(const std::string& request) {
  std::vector<absl::string_view> lines = absl::StrSplit(
      absl::string_view(request).substr(0, request.find("\r\n\r\n")), "\r\n");
  std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
  if (first.size() != 3) return Answer(400, "Bad Request", "bad request line");
  const absl::string_view method = first[0];
  const std::string path(first[1]);
  std::string token;
  std::string ttl;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> kv =
        absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    if (kv.size() != 2) continue;
    const absl::string_view key = absl::StripAsciiWhitespace(kv[0]);
    const absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
    if (absl::EqualsIgnoreCase(key, "X-metadata-token"))
      token = std::string(value);
    if (absl::EqualsIgnoreCase(key, "X-metadata-token-ttl-seconds")) {
      ttl = std::string(value);
    }
  }
  absl::MutexLock lock(&mu_);
  if (method == "PUT" && path == "/latest/api/token") {
    ++token_requests_;
    int seconds = 0;
    if (!absl::SimpleAtoi(ttl, &seconds) || seconds < 1 || seconds > 21600) {
      return Answer(400, "Bad Request", "bad token TTL");
    }
    std::string issued = absl::StrCat("token-", ++next_token_);
    tokens_[issued] = absl::Now() + absl::Seconds(seconds);
    return Answer(200, "OK", issued);
  }
  if (method != "GET") return Answer(405, "Method Not Allowed", "");
  ++get_requests_;
  auto live = tokens_.find(token);
  if (live == tokens_.end() || live->second <= absl::Now()) {
    ++unauthorized_;
    return Answer(401, "Unauthorized", "token missing, expired or invalid");
  }
  auto value = store_.find(path);
  if (value == store_.end()) return Answer(404, "Not Found", "");
  return Answer(200, "OK", value->second);
}

void FakeMmds::Set(const std::string& path, const std::string& json) {
  absl::MutexLock lock(&mu_);
  store_[path] = json;
}

void FakeMmds::Clear() {
  absl::MutexLock lock(&mu_);
  store_.clear();
}

void FakeMmds::ExpireTokens() {
  absl::MutexLock lock(&mu_);
  tokens_.clear();
}

void FakeMmds::SetDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  delay_ = delay;
}

int FakeMmds::token_requests() const {
  absl::MutexLock lock(&mu_);
  return token_requests_;
}

int FakeMmds::get_requests() const {
  absl::MutexLock lock(&mu_);
  return get_requests_;
}

int FakeMmds::unauthorized() const {
  absl::MutexLock lock(&mu_);
  return unauthorized_;
}

}  // namespace fcvm::agent::testing
