// A stand-in for the firecracker binary in //runner/firecracker:backend_test
// (a unit test of the backend's sequencing; a real Firecracker runs in
// tests tagged requires-firecracker). Serves an API on --api-sock that
// answers like Firecracker's, appends "METHOD PATH BODY" per request to
// $FAKE_FIRECRACKER_LOG, refuses requests to $FAKE_FIRECRACKER_REFUSE with
// a fault message, and after InstanceStart exits when "@fcvm stop" arrives
// on stdin (the console).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/testing/http_server.h"

int main(int argc, char** argv) {
  std::string api;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--api-sock") api = argv[i + 1];
  }
  const char* log = std::getenv("FAKE_FIRECRACKER_LOG");
  const char* refuse = std::getenv("FAKE_FIRECRACKER_REFUSE");
  if (api.empty() || log == nullptr) return 2;
  auto server = fcvm::testing::HttpTestServer::StartUnix(
      api, [&](const fcvm::testing::HttpRequest& request) {
        if (FILE* f = std::fopen(log, "a")) {
          std::fprintf(f, "%s %s %s\n", request.method.c_str(),
                       request.path.c_str(), request.body.c_str());
          std::fclose(f);
        }
        if (refuse != nullptr && request.path == refuse) {
          return fcvm::testing::HttpAnswer{
              400, R"({"fault_message":"fake: refused as asked"})"};
        }
        if (request.method == "GET") {
          return fcvm::testing::HttpAnswer{200, R"({"state":"Not started"})"};
        }
        return fcvm::testing::HttpAnswer{204, ""};
      });
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "@fcvm stop") return 0;
  }
  return 0;
}
