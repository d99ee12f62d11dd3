#include "rootfs/testing/http_server.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/file.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs::testing {
namespace {

using ::fcvm::testing::HttpAnswer;
using ::fcvm::testing::HttpRequest;

class ServeFromDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(std::getenv("TEST_TMPDIR")) + "/www";
    std::filesystem::create_directories(root_ + "/pool");
    ASSERT_TRUE(
        WriteFileAtomically(root_ + "/pool/a+b_1.0~rc1.deb", "bytes").ok());
  }
  HttpAnswer Get(const std::string& path, const std::string& method = "GET") {
    HttpRequest request;
    request.method = method;
    request.path = path;
    return ServeFromDirectory(root_, request);
  }
  std::string root_;
};

TEST_F(ServeFromDirectoryTest, ServesAFile) {
  const HttpAnswer answer = Get("/pool/a+b_1.0~rc1.deb");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "bytes");
  EXPECT_EQ(answer.content_type, "application/octet-stream");
}

TEST_F(ServeFromDirectoryTest, DecodesEscapesAndIgnoresTheQuery) {
  const HttpAnswer answer = Get("/pool/a%2Bb_1.0%7Erc1.deb?x=1");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "bytes");
}

TEST_F(ServeFromDirectoryTest, MissingDirectoryEscapeAndBadEscapeAre404) {
  EXPECT_EQ(Get("/pool/missing.deb").status, 404);
  EXPECT_EQ(Get("/pool").status, 404);
  EXPECT_EQ(Get("/pool/../www/pool/a+b_1.0~rc1.deb").status, 404);
  EXPECT_EQ(Get("/pool/a%2").status, 404);
  EXPECT_EQ(Get("pool/a+b_1.0~rc1.deb").status, 404);
}

TEST_F(ServeFromDirectoryTest, OnlyGet) {
  EXPECT_EQ(Get("/pool/a+b_1.0~rc1.deb", "POST").status, 405);
}

}  // namespace
}  // namespace fcvm::rootfs::testing
