#include "agent/testing/mmds_server.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"

namespace fcvm::agent::testing {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;
using ::fcvm::testing::HttpTestServer;

[[nodiscard]] absl::StatusOr<std::unique_ptr<FakeMmds>> FakeMmds::Start(
    MmdsStore::Clock clock) {
  std::unique_ptr<FakeMmds> mmds(new FakeMmds(std::move(clock)));
  ASSIGN_OR_RETURN(
      mmds->server_,
      HttpTestServer::StartTcp([m = mmds.get()](const HttpRequest& request) {
        return m->Respond(request);
      }));
  return mmds;
}

[[nodiscard]] absl::Status FakeMmds::HostRequest(absl::string_view method,
                                                 absl::string_view path,
                                                 absl::string_view body) {
  if (path == "/mmds" && method == "PUT") return store_.Put(body);
  if (path == "/mmds" && method == "PATCH") return store_.Patch(body);
  return absl::UnimplementedError(absl::StrCat(
      "the fake MMDS takes PUT or PATCH /mmds, not ", method, " ", path));
}

HttpAnswer FakeMmds::Respond(const HttpRequest& request) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = delay_;
    if (request.method == "PUT") ++token_requests_;
    if (request.method == "GET") ++get_requests_;
  }
  absl::SleepFor(delay);
  MmdsHeaders headers(request.headers.begin(), request.headers.end());
  MmdsAnswer answer = store_.Answer(request.method, request.path, headers);
  absl::MutexLock lock(&mu_);
  if (answer.status == 401) ++unauthorized_;
  if (request.method == "GET") ++answered_gets_;
  return {answer.status, std::move(answer.body),
          std::move(answer.content_type)};
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

bool FakeMmds::AwaitAnsweredGets(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  // Evaluated by the mutex with mu_ held.
  auto reached = [this, count]() { return answered_gets_ >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

}  // namespace fcvm::agent::testing
