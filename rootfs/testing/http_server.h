#ifndef FCVM_ROOTFS_TESTING_HTTP_SERVER_H_
#define FCVM_ROOTFS_TESTING_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/testing/http_server.h"

namespace fcvm::rootfs::testing {

// What a static file server answers for `request` from `directory`: GET of
// a regular file below it gives 200 and its bytes; a missing file, a
// directory or a path with ".." gives 404; other methods 405. The query
// string is ignored and %XX escapes are decoded, as a mirror's server does.
::fcvm::testing::HttpAnswer ServeFromDirectory(
    const std::string& directory, const ::fcvm::testing::HttpRequest& request);

// A real HTTP server on 127.0.0.1, an ephemeral port, serving the files
// under `directory` like a package mirror (base/testing's HttpTestServer
// with ServeFromDirectory). Destroying it stops the server.
class HttpServer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& directory);

  // "http://127.0.0.1:<port>", no trailing slash.
  const std::string& url() const { return url_; }

 private:
  explicit HttpServer(std::unique_ptr<::fcvm::testing::HttpTestServer> server);
  std::unique_ptr<::fcvm::testing::HttpTestServer> server_;
  std::string url_;
};

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_HTTP_SERVER_H_
