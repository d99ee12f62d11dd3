// Against the OCI archives the image pipeline builds.
#include "runner/storage/oci_image.h"

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

std::string g_busybox_httpd, g_nginx;

TEST(OciImageTest, ExposedPortsOfTheBuiltImages) {
  absl::StatusOr<std::vector<agent::PortMapping>> ports =
      ExposedPorts(g_busybox_httpd);
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), 1u);
  EXPECT_EQ((*ports)[0].guest_port(), 8080u);
  EXPECT_EQ((*ports)[0].protocol(), "tcp");
  ports = ExposedPorts(g_nginx);
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), 1u);
  EXPECT_EQ((*ports)[0].guest_port(), 80u);
}

TEST(OciImageTest, NotAnArchiveIsNamed) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/junk.tar";
  ASSERT_TRUE(WriteFileAtomically(path, "not a tar at all").ok());
  absl::StatusOr<std::vector<agent::PortMapping>> ports = ExposedPorts(path);
  ASSERT_FALSE(ports.ok());
  EXPECT_THAT(ports.status().message(), HasSubstr(path));
  EXPECT_THAT(ExposedPorts("/nonexistent.tar").status().message(),
              HasSubstr("/nonexistent.tar"));
}

}  // namespace
}  // namespace fcvm::runner

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 3) return 2;
  fcvm::runner::g_busybox_httpd = argv[1];
  fcvm::runner::g_nginx = argv[2];
  return RUN_ALL_TESTS();
}
