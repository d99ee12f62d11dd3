#include "rootfs/testing/http_server.h"

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fcvm::rootfs::testing {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& directory) {
  SubprocessOptions options;
  options.argv = {"python3",     "-u",      "-m",
                  "http.server", "--bind",  "127.0.0.1",
                  "--directory", directory, "0"};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kNull;
  absl::StatusOr<Subprocess> process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  std::unique_ptr<HttpServer> server(new HttpServer(*std::move(process)));
  // First line: "Serving HTTP on 127.0.0.1 port 43567 (http://...) ...".
  std::string line;
  char c;
  while (read(server->process_.stdout_pipe().get(), &c, 1) == 1 && c != '\n') {
    line.push_back(c);
  }
  size_t at = line.find(" port ");
  int port = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(line.substr(at + 6, line.find(' ', at + 6) - at - 6),
                        &port)) {
    return absl::InternalError(
        absl::StrCat("http.server did not say its port: '", line, "'"));
  }
  server->url_ = absl::StrCat("http://127.0.0.1:", port);
  return server;
}

}  // namespace fcvm::rootfs::testing
