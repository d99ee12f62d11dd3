#ifndef FCVM_AGENT_TESTING_MMDS_STORE_H_
#define FCVM_AGENT_TESTING_MMDS_STORE_H_

// A small copy of Firecracker's MMDS (version 2) without the network: one
// JSON document that the host replaces (PUT /mmds) or merge-patches
// (PATCH /mmds) through Firecracker's API, and the answers the guest gets
// from 169.254.169.254 for it. Written from Firecracker 1.16's behaviour
// (src/vmm/src/mmds/): same document semantics, status codes, content types
// and error texts. Thread-safe: the host and the guest side may be driven
// from different threads, as in Firecracker.
//
// Known differences, none of which a plan can reach: numbers are doubles
// (Firecracker keeps 64-bit integers exact), JSON is printed by protobuf
// (which writes '<' and '>' as \u003c and \u003e), a document with a
// repeated key is refused (Firecracker keeps the last), tokens are opaque
// random strings (Firecracker's are AES-GCM sealed expiry times), and V1
// and the IMDS-compatible mode are not modelled.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

namespace fcvm::agent::testing {

// Request or response headers: names as sent (MMDS compares them without
// regard to case), in order.
using MmdsHeaders = std::vector<std::pair<std::string, std::string>>;

// What MMDS answers one guest request.
struct MmdsAnswer {
  int status = 200;
  std::string content_type;  // "application/json" or "text/plain".
  std::string body;
  // Beyond Content-Type: the TTL echoed on a token (under the request's
  // spelling of the header name), Allow on a 405.
  MmdsHeaders headers;
};

class MmdsStore {
 public:
  // Firecracker's default --mmds-size-limit (its API payload limit): the
  // document's compact JSON may not be longer.
  static constexpr size_t kDefaultSizeLimit = 51200;
  // Token lifetimes Firecracker accepts, in seconds.
  static constexpr uint32_t kMinTokenTtlSeconds = 1;
  static constexpr uint32_t kMaxTokenTtlSeconds = 21600;

  using Clock = std::function<absl::Time()>;

  // `clock` decides when tokens expire (Firecracker's monotonic clock);
  // tests pass a fake one so nothing sleeps.
  explicit MmdsStore(
      Clock clock = [] { return absl::Now(); },
      size_t size_limit = kDefaultSizeLimit);

  MmdsStore(const MmdsStore&) = delete;
  MmdsStore& operator=(const MmdsStore&) = delete;

  // The host side, as Firecracker's API socket takes it. Errors carry
  // Firecracker's fault_message; its API answers INVALID_ARGUMENT and
  // FAILED_PRECONDITION with 400, RESOURCE_EXHAUSTED with 413, success of
  // PUT and PATCH with 204.
  //
  // PUT /mmds: the document becomes `json` (any JSON value). Not JSON:
  // INVALID_ARGUMENT. Longer than the size limit: RESOURCE_EXHAUSTED and
  // the document is unchanged.
  [[nodiscard]] absl::Status Put(absl::string_view json);
  // PATCH /mmds: an RFC 7396 JSON merge patch (null removes a key, an
  // object merges, anything else replaces). Before the first Put:
  // FAILED_PRECONDITION. The size limit applies to the result.
  [[nodiscard]] absl::Status Patch(absl::string_view json);
  // GET /mmds (200): the document as compact JSON, keys sorted; "{}"
  // while it is null (as it is before the first Put).
  std::string Get() const;

  // The guest side: a request to 169.254.169.254 with the path as sent
  // ("/fcvm/plan" or "http://169.254.169.254/fcvm/plan"). PUT
  // /latest/api/token with X-metadata-token-ttl-seconds issues a token;
  // GET needs a live one in X-metadata-token and answers the value at the
  // path: JSON with "Accept: application/json", else the IMDS text format
  // (an object lists its keys one per line, sub-objects with a trailing
  // '/'; a string is itself; other values are 501).
  MmdsAnswer Answer(absl::string_view method, absl::string_view path,
                    const MmdsHeaders& headers);

  // What a snapshot restore does to the guest: every token issued so far
  // is refused from now on. The document stays.
  void ExpireTokens();

 private:
  MmdsAnswer AnswerGet(absl::string_view uri, const MmdsHeaders& headers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MmdsAnswer AnswerPut(absl::string_view uri, const MmdsHeaders& headers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsLiveToken(absl::string_view token) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::Status Replace(google::protobuf::Value document)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock clock_;
  const size_t size_limit_;
  mutable absl::Mutex mu_;
  google::protobuf::Value document_ ABSL_GUARDED_BY(mu_);
  bool initialized_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, absl::Time> tokens_ ABSL_GUARDED_BY(mu_);
  uint64_t tokens_issued_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fcvm::agent::testing

#endif  // FCVM_AGENT_TESTING_MMDS_STORE_H_
