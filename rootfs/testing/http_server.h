#ifndef FCVM_ROOTFS_TESTING_HTTP_SERVER_H_
#define FCVM_ROOTFS_TESTING_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/subprocess.h"

namespace fcvm::rootfs::testing {

// A real HTTP server (python3 -m http.server) on 127.0.0.1, an ephemeral
// port, serving `directory`. Destroying it kills the server.
class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& directory);

  // "http://127.0.0.1:<port>", no trailing slash.
  const std::string& url() const { return url_; }

 private:
  explicit HttpServer(Subprocess process) : process_(std::move(process)) {}
  Subprocess process_;
  std::string url_;
};

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_HTTP_SERVER_H_
