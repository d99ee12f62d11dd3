#ifndef FCVM_AGENT_TESTING_MMDS_SERVER_H_
#define FCVM_AGENT_TESTING_MMDS_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/testing/http_server.h"

namespace fcvm::agent::testing {

// An HTTP server on 127.0.0.1 (ephemeral port) that behaves like
// Firecracker's MMDS in V2 mode: PUT /latest/api/token with
// X-metadata-token-ttl-seconds returns a token; GET needs a live token in
// X-metadata-token (401 otherwise) and answers 200 with the JSON stored at
// the path, or 404. Tests steer it: fill or empty the store, expire every
// token (what a snapshot restore does), slow every answer down.
class FakeMmds {
 public:
  static absl::StatusOr<std::unique_ptr<FakeMmds>> Start();

  uint16_t port() const { return server_->port(); }

  void Set(const std::string& path, const std::string& json);
  void Clear();
  void ExpireTokens();
  void SetDelay(absl::Duration delay);

  int token_requests() const;
  int get_requests() const;
  int unauthorized() const;

 private:
  FakeMmds() = default;
  ::fcvm::testing::HttpAnswer Respond(
      const ::fcvm::testing::HttpRequest& request);

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> store_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int next_token_ ABSL_GUARDED_BY(mu_) = 0;
  int token_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int get_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int unauthorized_ ABSL_GUARDED_BY(mu_) = 0;
  // Last: destroyed (stopped) first, before the state it reads.
  std::unique_ptr<::fcvm::testing::HttpTestServer> server_;
};

}  // namespace fcvm::agent::testing

#endif  // FCVM_AGENT_TESTING_MMDS_SERVER_H_
