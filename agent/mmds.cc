#include "agent/mmds.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::agent {
namespace {

constexpr absl::string_view kTokenPath = "/latest/api/token";
constexpr absl::string_view kTtlHeader = "X-metadata-token-ttl-seconds";
constexpr absl::string_view kTokenHeader = "X-metadata-token";

bool Retryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsNotFound(status);
}

}  // namespace

[[nodiscard]] absl::Status MmdsClient::RefreshToken() {
  HttpRequest request;
  request.method = "PUT";
  request.path = std::string(kTokenPath);
  request.headers.emplace_back(
      std::string(kTtlHeader),
      absl::StrCat(absl::ToInt64Seconds(options_.token_ttl)));
  const absl::Time asked = options_.clock.now();
  ASSIGN_OR_RETURN(HttpResponse response, HttpCall(options_.endpoint, request,
                                                   options_.request_timeout));
  if (response.status != 200 || response.body.empty()) {
    return absl::UnavailableError(absl::StrCat("MMDS token request answered ",
                                               response.status, ": ",
                                               response.body.substr(0, 200)));
  }
  token_ = response.body;
  // Renew a little early rather than race the expiry.
  token_expiry_ = asked + options_.token_ttl * 0.9;
  ++tokens_issued_;
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<HttpResponse> MmdsClient::GetOnce(
    absl::string_view path) {
  if (token_.empty() || options_.clock.now() >= token_expiry_) {
    RETURN_IF_ERROR(RefreshToken());
  }
  HttpRequest request;
  request.path = std::string(path);
  request.headers.emplace_back(std::string(kTokenHeader), token_);
  request.headers.emplace_back("Accept", "application/json");
  return HttpCall(options_.endpoint, request, options_.request_timeout);
}

[[nodiscard]] absl::StatusOr<std::string> MmdsClient::Get(
    absl::string_view path) {
  ASSIGN_OR_RETURN(HttpResponse response, GetOnce(path));
  if (response.status == 401) {
    // The token died (TTL, or a snapshot restore): one more try, fresh.
    ForgetToken();
    ASSIGN_OR_RETURN(response, GetOnce(path));
    if (response.status == 401) {
      return absl::PermissionDeniedError(
          absl::StrCat("MMDS refused a fresh token for ", path, ": ",
                       response.body.substr(0, 200)));
    }
  }
  if (response.status == 404) {
    return absl::NotFoundError(absl::StrCat("MMDS has nothing at ", path));
  }
  if (response.status != 200) {
    return absl::UnavailableError(absl::StrCat("MMDS GET ", path, " answered ",
                                               response.status, ": ",
                                               response.body.substr(0, 200)));
  }
  return std::move(response.body);
}

[[nodiscard]] absl::StatusOr<std::string> GetWithRetry(MmdsClient& client,
                                                       absl::string_view path,
                                                       absl::Time deadline,
                                                       RetryPolicy policy) {
  const MmdsClock& clock = client.options().clock;
  absl::Duration backoff = policy.first;
  int attempts = 0;
  for (;;) {
    ++attempts;
    absl::StatusOr<std::string> result = client.Get(path);
    if (result.ok() || !Retryable(result.status())) return result;
    const absl::Duration left = deadline - clock.now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no plan from MMDS after ", attempts,
                       " attempts; last: ", result.status().message()));
    }
    clock.sleep(std::min(backoff, left));
    backoff = std::min(backoff * 2, policy.max);
  }
}

}  // namespace fcvm::agent
