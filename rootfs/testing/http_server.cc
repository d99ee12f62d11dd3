#include "rootfs/testing/http_server.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"

namespace fcvm::rootfs::testing {
namespace {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;
using ::fcvm::testing::HttpTestServer;

HttpAnswer NotFound(const std::string& path) {
  return {404, absl::StrCat("not found: ", path, "\n"), "text/plain"};
}

// "/a%2Bb?x" -> "/a+b"; false on a malformed escape.
bool DecodePath(const std::string& target, std::string* path) {
  const std::string raw = target.substr(0, target.find('?'));
  path->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      path->push_back(raw[i]);
      continue;
    }
    int value = 0;
    if (i + 2 >= raw.size() ||
        !absl::SimpleHexAtoi(raw.substr(i + 1, 2), &value)) {
      return false;
    }
    path->push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

}  // namespace

HttpAnswer ServeFromDirectory(const std::string& directory,
                              const HttpRequest& request) {
  if (request.method != "GET") {
    return {405, "only GET\n", "text/plain"};
  }
  std::string path;
  if (!DecodePath(request.path, &path) || !absl::StartsWith(path, "/") ||
      absl::StrContains(path, "..")) {
    return NotFound(request.path);
  }
  const std::string file = directory + path;
  struct stat st;
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return NotFound(request.path);
  }
  absl::StatusOr<std::string> data = ReadFile(file);
  if (!data.ok()) return NotFound(request.path);
  return {200, *std::move(data), "application/octet-stream"};
}

HttpServer::HttpServer(std::unique_ptr<HttpTestServer> server)
    : server_(std::move(server)),
      url_(absl::StrCat("http://127.0.0.1:", server_->port())) {}

[[nodiscard]] absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& directory) {
  absl::StatusOr<std::unique_ptr<HttpTestServer>> server =
      HttpTestServer::StartTcp([directory](const HttpRequest& request) {
        return ServeFromDirectory(directory, request);
      });
  if (!server.ok()) return server.status();
  return std::unique_ptr<HttpServer>(new HttpServer(*std::move(server)));
}

}  // namespace fcvm::rootfs::testing
