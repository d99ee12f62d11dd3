// Unpacks the whole locked closure of the base image (amd64, 106 Debian
// packages fetched by sha256) into one ext4 image through libext2fs, and
// checks the result with e2fsck and debugfs.
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/definition.h"
#include "rootfs/image/ext4_image.h"
#include "rootfs/image/unpack.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

std::string RunChecked(const std::vector<std::string>& argv) {
  SubprocessOptions options{.argv = argv};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> child = Subprocess::Start(options);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return "";
  absl::StatusOr<Subprocess::Output> out =
      child->Communicate("", absl::Minutes(5));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return "";
  EXPECT_TRUE(out->exit.success())
      << argv[0] << " " << out->exit.ToString() << "\n"
      << out->stdout_data << out->stderr_data;
  return out->stdout_data;
}

TEST(UnpackDebianTest, WholeBaseClosureMakesACleanImage) {
  absl::StatusOr<std::string> json = ReadFile("images/base/amd64.lock");
  ASSERT_TRUE(json.ok()) << json.status();
  absl::StatusOr<Lockfile> lock = LockfileFromJson(*json);
  ASSERT_TRUE(lock.ok()) << lock.status();
  ASSERT_GT(lock->packages_size(), 100);

  const std::string path =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/base.ext4");
  Ext4Options options;
  options.size_bytes = 1ull << 30;
  options.timestamp = 1700000000;
  absl::StatusOr<std::unique_ptr<Ext4Image>> image =
      Ext4Image::Create(path, options);
  ASSERT_TRUE(image.ok()) << image.status();
  int with_scripts = 0;
  for (const LockedPackage& p : lock->packages()) {
    const std::string deb =
        absl::StrCat("external/base_amd64/debs/", p.name(), ".deb");
    absl::StatusOr<DebControl> control = ReadDebControl(deb);
    ASSERT_TRUE(control.ok()) << control.status();
    with_scripts += !control->scripts.empty();
    absl::Status unpacked = UnpackDeb(p.name(), deb, **image);
    ASSERT_TRUE(unpacked.ok()) << unpacked;
  }
  ASSERT_TRUE((*image)->Finish().ok());
  std::cerr << lock->packages_size() << " packages unpacked, " << with_scripts
            << " with maintainer scripts\n";

  RunChecked({"e2fsck", "-fn", path});
  // Binaries with their modes and owners, as Debian ships them.
  EXPECT_THAT(RunChecked({"debugfs", "-R", "stat /usr/bin/podman", path}),
              HasSubstr("Mode:  0755"));
  EXPECT_THAT(RunChecked({"debugfs", "-R", "stat /usr/bin/crun", path}),
              HasSubstr("User:     0"));
  EXPECT_THAT(RunChecked({"debugfs", "-R", "ls -l /usr/bin", path}),
              HasSubstr("conmon"));
  EXPECT_THAT(RunChecked({"debugfs", "-R", "stat /bin/busybox", path}),
              HasSubstr("Mode:  0755"));
  EXPECT_THAT(RunChecked({"debugfs", "-R",
                          "stat /lib/x86_64-linux-gnu/libc.so.6", path}),
              HasSubstr("Type: regular"));
}

}  // namespace
}  // namespace fcvm::rootfs
