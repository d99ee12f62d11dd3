#ifndef FCVM_ROOTFS_LOCK_FETCH_H_
#define FCVM_ROOTFS_LOCK_FETCH_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace fcvm::rootfs {

struct FetchOptions {
  // Names the object in errors, e.g. "package podman" or "InRelease".
  std::string what;
  // When set, the download must have exactly this SHA-256 / size.
  std::string expected_sha256;
  uint64_t expected_size = 0;
  absl::Duration timeout = absl::Minutes(10);
};

// Downloads `url` (http, https or file) to `path`, replacing it atomically:
// a failed or mismatching download leaves no file behind. Errors name the
// object, the URL and the cause (HTTP status, connection error, or expected
// and found hash).
[[nodiscard]] absl::Status FetchToFile(const std::string& url,
                                       const std::string& path,
                                       const FetchOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_FETCH_H_
