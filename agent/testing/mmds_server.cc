#include "agent/testing/mmds_server.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"

namespace fcvm::agent::testing {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;
using ::fcvm::testing::HttpTestServer;

absl::StatusOr<std::unique_ptr<FakeMmds>> FakeMmds::Start() {
  std::unique_ptr<FakeMmds> mmds(new FakeMmds());
  ASSIGN_OR_RETURN(
      mmds->server_,
      HttpTestServer::StartTcp([m = mmds.get()](const HttpRequest& request) {
        return m->Respond(request);
      }));
  return mmds;
}

HttpAnswer FakeMmds::Respond(const HttpRequest& request) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = delay_;
  }
  absl::SleepFor(delay);
  absl::MutexLock lock(&mu_);
  if (request.method == "PUT" && request.path == "/latest/api/token") {
    ++token_requests_;
    int seconds = 0;
    if (!absl::SimpleAtoi(request.Header("x-metadata-token-ttl-seconds"),
                          &seconds) ||
        seconds < 1 || seconds > 21600) {
      return {400, "bad token TTL"};
    }
    std::string issued = absl::StrCat("token-", ++next_token_);
    tokens_[issued] = absl::Now() + absl::Seconds(seconds);
    return {200, issued};
  }
  if (request.method != "GET") return {405, ""};
  ++get_requests_;
  auto live = tokens_.find(request.Header("x-metadata-token"));
  if (live == tokens_.end() || live->second <= absl::Now()) {
    ++unauthorized_;
    return {401, "token missing, expired or invalid"};
  }
  auto value = store_.find(request.path);
  if (value == store_.end()) return {404, ""};
  return {200, value->second};
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
