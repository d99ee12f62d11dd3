// Against the OCI archives the image pipeline builds.
#include "runner/storage/oci_image.h"

#include <cstdio>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

std::string g_busybox_httpd, g_nginx;

TEST(OciImageTest, ExposedPortsOfTheBuiltImages) {
  absl::StatusOr<std::vector<PublishedPort>> ports =
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

// What a baked root filesystem of the same image runs with.
TEST(OciImageTest, ImageConfigOfTheBuiltImages) {
  absl::StatusOr<rootfs::oci::ContainerConfig> nginx = ImageConfig(g_nginx);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  EXPECT_THAT(nginx->cmd(),
              ::testing::ElementsAre("/usr/sbin/nginx", "-g", "daemon off;"));
  EXPECT_TRUE(nginx->entrypoint().empty());
  EXPECT_EQ(nginx->stop_signal(), "SIGQUIT");
  EXPECT_EQ(nginx->exposed_ports().count("80/tcp"), 1u);
  absl::StatusOr<rootfs::oci::ContainerConfig> busybox =
      ImageConfig(g_busybox_httpd);
  ASSERT_TRUE(busybox.ok()) << busybox.status();
  ASSERT_GE(busybox->cmd_size(), 2);
  EXPECT_EQ(busybox->cmd(0), "/bin/busybox");
  EXPECT_EQ(busybox->cmd(1), "httpd");
  absl::StatusOr<std::vector<PublishedPort>> ports =
      ExposedPorts(*busybox, g_busybox_httpd);
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), 1u);
  EXPECT_EQ((*ports)[0].guest_port(), 8080u);
}

TEST(OciImageTest, NotAnArchiveIsNamed) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/junk.tar";
  ASSERT_TRUE(WriteFileAtomically(path, "not a tar at all").ok());
  absl::StatusOr<std::vector<PublishedPort>> ports = ExposedPorts(path);
  ASSERT_FALSE(ports.ok());
  EXPECT_THAT(ports.status().message(), HasSubstr(path));
  EXPECT_THAT(ExposedPorts("/nonexistent.tar").status().message(),
              HasSubstr("/nonexistent.tar"));
}

// A tar header by hand: the archive claims an index.json of 8 GiB. It must
// be refused by its size, before anything that large is allocated.
TEST(OciImageTest, AnIndexTooLargeIsRefusedBeforeItIsRead) {
  std::string header(512, '\0');
  auto put = [&](size_t at, const std::string& text) {
    header.replace(at, text.size(), text);
  };
  put(0, "index.json");
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  put(124, "77777777777");  // Octal: 8 GiB - 1.
  put(136, "00000000000");
  put(156, "0");
  put(257, std::string("ustar\0", 6));
  put(263, "00");
  put(148, "        ");  // The checksum counts itself as spaces.
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  char checksum[8];
  snprintf(checksum, sizeof(checksum), "%06o", sum);
  put(148, std::string(checksum, 6) + std::string("\0 ", 2));
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/huge.tar";
  ASSERT_TRUE(WriteFileAtomically(path, header + std::string(1024, '\0')).ok());
  absl::StatusOr<std::vector<PublishedPort>> ports = ExposedPorts(path);
  ASSERT_FALSE(ports.ok());
  EXPECT_EQ(ports.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(ports.status().message(),
              HasSubstr("index.json is 8589934591 bytes (at most 1048576)"));
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
