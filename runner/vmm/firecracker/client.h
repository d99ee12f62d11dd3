#ifndef FCVM_RUNNER_VMM_FIRECRACKER_CLIENT_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_CLIENT_H_

// Firecracker's REST API over its Unix socket, with libcurl.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::runner::firecracker {

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path)
      : socket_path_(std::move(socket_path)) {}

  // Sends one request and returns the response body on 2xx. Otherwise an
  // error naming the request and Firecracker's own fault_message (400:
  // InvalidArgument), or the socket and curl's reason when Firecracker
  // cannot be reached (Unavailable).
  [[nodiscard]] absl::StatusOr<std::string> Send(
      const ApiRequest& request,
      absl::Duration timeout = absl::Seconds(10)) const;

  // Waits until the API answers GET / (Firecracker creates the socket a
  // moment after it starts).
  [[nodiscard]] absl::Status WaitReady(absl::Duration timeout) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
};

}  // namespace fcvm::runner::firecracker

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_CLIENT_H_
