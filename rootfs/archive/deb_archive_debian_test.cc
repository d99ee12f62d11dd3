// Reads real archives of the locked base image (fetched by sha256 through
// @base_amd64): proves the reader on what Debian actually ships.
#include <string>

#include "gtest/gtest.h"
#include "rootfs/archive/deb_archive.h"

namespace fcvm::rootfs {
namespace {

TEST(DebianArchiveTest, Busybox) {
  absl::StatusOr<DebControl> control =
      ReadDebControl("external/base_amd64/debs/busybox-static.deb");
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_NE(control->control.find("Package: busybox-static\n"),
            std::string::npos);
  bool found = false;
  absl::Status status =
      ReadDebData("external/base_amd64/debs/busybox-static.deb",
                  [&](const FileEntry& e, absl::string_view data) {
                    if (e.path == "bin/busybox") {
                      found = true;
                      EXPECT_EQ(e.type, FileEntry::Type::kFile);
                      EXPECT_EQ(e.mode, 0755u);
                      EXPECT_EQ(e.uid, 0u);
                      EXPECT_EQ(data.substr(0, 4),
                                "\x7f"
                                "ELF");
                    }
                    return absl::OkStatus();
                  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(found);
}

TEST(DebianArchiveTest, PodmanHasItsBinaryAndScriptsAreListed) {
  int files = 0;
  bool podman = false;
  absl::Status status =
      ReadDebData("external/base_amd64/debs/podman.deb",
                  [&](const FileEntry& e, absl::string_view) {
                    files += e.type == FileEntry::Type::kFile;
                    podman |= e.path == "usr/bin/podman" && e.mode == 0755;
                    return absl::OkStatus();
                  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(podman);
  EXPECT_GT(files, 10);
}

}  // namespace
}  // namespace fcvm::rootfs
