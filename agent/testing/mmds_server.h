#ifndef FCVM_AGENT_TESTING_MMDS_SERVER_H_
#define FCVM_AGENT_TESTING_MMDS_SERVER_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/testing/mmds_store.h"
#include "base/testing/http_server.h"

namespace fcvm::agent::testing {

// Firecracker's MMDS as the guest reaches it: HTTP on 127.0.0.1 (ephemeral
// port) answering from an MmdsStore (see mmds_store.h for what it does).
// The host fills the store the way Firecracker's API takes it
// (HostRequest with the runner's own PUT /mmds). Tests steer it: expire
// every token (a snapshot restore), slow every answer down, count what
// arrived and wait for it.
//
// Over this transport the store sees header names in lower case, and its
// extra response headers (the TTL echo, Allow) are not sent: no client
// here reads them.
class FakeMmds {
 public:
  // `clock` is the store's, for token lifetimes.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeMmds>> Start(
      MmdsStore::Clock clock = [] { return absl::Now(); });

  uint16_t port() const { return server_->port(); }
  MmdsStore& store() { return store_; }

  // A request on Firecracker's API socket: PUT or PATCH /mmds with a JSON
  // body. Anything else is UNIMPLEMENTED: this fake has no other resource.
  [[nodiscard]] absl::Status HostRequest(absl::string_view method,
                                         absl::string_view path,
                                         absl::string_view body);

  void ExpireTokens() { store_.ExpireTokens(); }
  // Every answer waits this long first (a slow or congested MMDS).
  void SetDelay(absl::Duration delay);

  // Guest requests that arrived: token PUTs, GETs (any path), and answers
  // that were 401.
  int token_requests() const;
  int get_requests() const;
  int unauthorized() const;
  // Waits until `count` GETs have been answered; false after `timeout`.
  [[nodiscard]] bool AwaitAnsweredGets(int count, absl::Duration timeout) const;

 private:
  explicit FakeMmds(MmdsStore::Clock clock) : store_(std::move(clock)) {}
  ::fcvm::testing::HttpAnswer Respond(
      const ::fcvm::testing::HttpRequest& request);

  MmdsStore store_;
  mutable absl::Mutex mu_;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int token_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int get_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int answered_gets_ ABSL_GUARDED_BY(mu_) = 0;
  int unauthorized_ ABSL_GUARDED_BY(mu_) = 0;
  // Last: destroyed (stopped) first, before the state it reads.
  std::unique_ptr<::fcvm::testing::HttpTestServer> server_;
};

}  // namespace fcvm::agent::testing

#endif  // FCVM_AGENT_TESTING_MMDS_SERVER_H_
