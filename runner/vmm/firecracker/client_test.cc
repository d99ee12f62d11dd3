// The libcurl client against an HTTP server on a Unix socket that answers
// like Firecracker's API (base/testing/http_server).
#include "runner/vmm/firecracker/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/testing/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner::firecracker {
namespace {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;
using ::fcvm::testing::HttpTestServer;
using ::testing::HasSubstr;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fcvm-fc-client.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/api.sock";
  }
  void TearDown() override {
    server_.reset();
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }
  void Serve(HttpTestServer::Handler handler) {
    auto server = HttpTestServer::StartUnix(socket_, std::move(handler));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string dir_, socket_;
  std::unique_ptr<HttpTestServer> server_;
};

TEST_F(ClientTest, SendsMethodPathAndJsonBody) {
  absl::Mutex mu;
  std::vector<HttpRequest> seen;
  Serve([&](const HttpRequest& request) {
    absl::MutexLock lock(&mu);
    seen.push_back(request);
    return HttpAnswer{204, ""};
  });
  ApiClient client(socket_);
  ASSERT_TRUE(client.Send(StartRequest()).ok());
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].path, "/actions");
  EXPECT_EQ(seen[0].body, R"({"action_type":"InstanceStart"})");
  EXPECT_EQ(seen[0].Header("content-type"), "application/json");
}

TEST_F(ClientTest, FirecrackersFaultMessageIsInTheError) {
  Serve([](const HttpRequest&) {
    return HttpAnswer{
        400, R"({"fault_message":"The kernel file cannot be opened"})"};
  });
  absl::StatusOr<std::string> sent =
      ApiClient(socket_).Send({"PUT", "/boot-source", R"({"a":1})"});
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sent.status().message(),
              HasSubstr("Firecracker refused PUT /boot-source (HTTP 400): The "
                        "kernel file cannot be opened"));
}

TEST_F(ClientTest, GetReturnsTheBody) {
  Serve([](const HttpRequest& request) {
    return request.method == "GET" ? HttpAnswer{200, R"({"state":"Running"})"}
                                   : HttpAnswer{405, ""};
  });
  ApiClient client(socket_);
  EXPECT_TRUE(client.WaitReady(absl::Seconds(2)).ok());
  absl::StatusOr<std::string> info = client.Send({"GET", "/", ""});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(*info, R"({"state":"Running"})");
}

TEST_F(ClientTest, NoFirecrackerIsUnavailableAndNamesTheSocket) {
  ApiClient client(socket_);
  absl::StatusOr<std::string> sent = client.Send(StartRequest());
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(sent.status().message(), HasSubstr(socket_));
  absl::Status ready = client.WaitReady(absl::Milliseconds(100));
  EXPECT_EQ(ready.code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace fcvm::runner::firecracker
