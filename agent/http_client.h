#ifndef FCVM_AGENT_HTTP_CLIENT_H_
#define FCVM_AGENT_HTTP_CLIENT_H_

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fcvm::agent {

// A plain-HTTP/1.1 client for link-local services (Firecracker's MMDS, a
// readiness probe on the guest's own ports): one request per connection,
// IPv4 literal addresses only, no TLS, no redirects, no name lookup (the
// agent is a static binary without NSS).
//
// Why not libcurl: the agent links fully static, and Debian's libcurl.a pulls
// in GSSAPI, LDAP, IDN, RTMP and SSH libraries that ship no static archives.
// What MMDS needs is a request line, three headers and a bounded body.

struct HttpEndpoint {
  std::string ip;  // IPv4 literal, e.g. "169.254.169.254".
  uint16_t port = 80;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name` (case-insensitive), or "".
  std::string Header(absl::string_view name) const;
};

// Larger responses are refused: a plan is a few KiB.
inline constexpr size_t kMaxHttpResponseBytes = 1 << 20;

// Sends `request` and reads the response, all within `timeout`. Connection
// refused, unreachable and timeouts are UNAVAILABLE / DEADLINE_EXCEEDED (worth
// retrying); a malformed response is DATA_LOSS. Errors name the endpoint.
[[nodiscard]] absl::StatusOr<HttpResponse> HttpCall(
    const HttpEndpoint& endpoint, const HttpRequest& request,
    absl::Duration timeout);

// Whether a TCP connection to `endpoint` succeeds within `timeout` (a
// readiness probe). Refused / timed out as UNAVAILABLE / DEADLINE_EXCEEDED.
[[nodiscard]] absl::Status ProbeTcp(const HttpEndpoint& endpoint,
                                    absl::Duration timeout);

// Parses a complete response (status line, headers, body by Content-Length,
// or to the end when there is none; a chunked body is left encoded: MMDS
// sends lengths, and a probe only needs the status). Exposed for tests.
[[nodiscard]] absl::StatusOr<HttpResponse> ParseHttpResponse(
    absl::string_view raw);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_HTTP_CLIENT_H_
