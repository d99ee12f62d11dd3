#ifndef FCVM_AGENT_MMDS_H_
#define FCVM_AGENT_MMDS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/http_client.h"

namespace fcvm::agent {

// The MMDS client's time: when its token is due for renewal, and the
// waits between attempts. Tests pass a fake clock, so nothing really
// sleeps and nothing depends on how fast the machine is.
struct MmdsClock {
  std::function<absl::Time()> now = [] { return absl::Now(); };
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) {
    absl::SleepFor(d);
  };
};

struct MmdsOptions {
  // Firecracker's default MMDS address; the agent routes it via eth0.
  HttpEndpoint endpoint = {"169.254.169.254", 80};
  // Session token lifetime asked for (Firecracker allows 1 s to 6 h).
  absl::Duration token_ttl = absl::Hours(6);
  // One HTTP exchange (on the real clock: it is a socket timeout).
  absl::Duration request_timeout = absl::Seconds(2);
  MmdsClock clock;
};

// Firecracker's MMDS, version 2: PUT /latest/api/token (header
// X-metadata-token-ttl-seconds) gives a session token; every GET carries it
// (X-metadata-token). A 401 means the token died (expired, or the VM was
// restored from a snapshot): the client gets a new one and asks again, once.
// Not thread-safe.
class MmdsClient {
 public:
  explicit MmdsClient(MmdsOptions options) : options_(std::move(options)) {}

  // The JSON at `path` ("/fcvm/plan"). NOT_FOUND while the store has
  // nothing there; UNAVAILABLE / DEADLINE_EXCEEDED when MMDS cannot be
  // reached; PERMISSION_DENIED when even a fresh token is refused.
  [[nodiscard]] absl::StatusOr<std::string> Get(absl::string_view path);

  // Drops the session token: after a snapshot restore it is dead anyway,
  // and asking for a new one first saves a 401 round trip.
  void ForgetToken() { token_.clear(); }

  // How many tokens this client has obtained (for tests and the status).
  int tokens_issued() const { return tokens_issued_; }

  const MmdsOptions& options() const { return options_; }

 private:
  [[nodiscard]] absl::Status RefreshToken();
  [[nodiscard]] absl::StatusOr<HttpResponse> GetOnce(absl::string_view path);

  MmdsOptions options_;
  std::string token_;
  absl::Time token_expiry_;
  int tokens_issued_ = 0;
};

// Backoff between attempts: 50 ms, doubling, at most 1 s.
struct RetryPolicy {
  absl::Duration first = absl::Milliseconds(50);
  absl::Duration max = absl::Seconds(1);
};

// Get() again and again while MMDS is unreachable or `path` is empty
// (the host may start the VM before it fills the store), until `deadline`
// (on the client's clock), sleeping on that clock between attempts. Other
// errors return at once. The last error is in the deadline message.
[[nodiscard]] absl::StatusOr<std::string> GetWithRetry(MmdsClient& client,
                                                       absl::string_view path,
                                                       absl::Time deadline,
                                                       RetryPolicy policy = {});

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_MMDS_H_
