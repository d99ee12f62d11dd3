#include "rootfs/lock/fetch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/http_server.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using testing::IsOkAndHolds;

// A real HTTP server on loopback serving one file.
class FetchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/www"));
    mkdir(root_->c_str(), 0755);
    ASSERT_TRUE(WriteFileAtomically(*root_ + "/pkg.deb", "package bytes").ok());
    absl::StatusOr<std::unique_ptr<testing::HttpServer>> server =
        testing::HttpServer::Start(*root_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    base_ = new std::string(server_->url());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete base_;
    delete root_;
  }
  std::string Out(const std::string& name) {
    return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  }
  static std::string* root_;
  static std::string* base_;
  static testing::HttpServer* server_;
};
std::string* FetchTest::root_ = nullptr;
std::string* FetchTest::base_ = nullptr;
testing::HttpServer* FetchTest::server_ = nullptr;

TEST_F(FetchTest, DownloadsAndVerifies) {
  FetchOptions options{.what = "package pkg",
                       .expected_sha256 = Sha256Hex("package bytes"),
                       .expected_size = 13};
  ASSERT_TRUE(FetchToFile(*base_ + "/pkg.deb", Out("a.deb"), options).ok());
  EXPECT_THAT(ReadFile(Out("a.deb")), IsOkAndHolds("package bytes"));
}

TEST_F(FetchTest, WrongHashNamesBothAndLeavesNothing) {
  const std::string wrong(64, '0');
  absl::Status status =
      FetchToFile(*base_ + "/pkg.deb", Out("b.deb"),
                  {.what = "package pkg", .expected_sha256 = wrong});
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),
            absl::StrCat("fetching package pkg from ", *base_,
                         "/pkg.deb: sha256 mismatch: expected ", wrong,
                         ", found ", Sha256Hex("package bytes")));
  EXPECT_EQ(access(Out("b.deb").c_str(), F_OK), -1);
}

TEST_F(FetchTest, WrongSize) {
  absl::Status status =
      FetchToFile(*base_ + "/pkg.deb", Out("c.deb"),
                  {.what = "package pkg", .expected_size = 99});
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("size mismatch: expected 99 bytes, got 13"));
}

TEST_F(FetchTest, NotFound) {
  absl::Status status = FetchToFile(*base_ + "/missing.deb", Out("d.deb"),
                                    {.what = "package missing"});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("fetching package missing from"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("404"));
  EXPECT_EQ(access(Out("d.deb").c_str(), F_OK), -1);
}

TEST_F(FetchTest, ConnectionRefused) {
  // Port 1 on loopback: nothing listens there.
  absl::Status status =
      FetchToFile("http://127.0.0.1:1/x", Out("e"), {.what = "index"});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("fetching index from http://127.0.0.1:1/x: "));
}

TEST_F(FetchTest, FileUrl) {
  ASSERT_TRUE(FetchToFile("file://" + *root_ + "/pkg.deb", Out("f.deb"),
                          {.expected_sha256 = Sha256Hex("package bytes")})
                  .ok());
  EXPECT_THAT(ReadFile(Out("f.deb")), IsOkAndHolds("package bytes"));
}

}  // namespace
}  // namespace fcvm::rootfs
