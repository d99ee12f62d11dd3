#include "rootfs/archive/apk_archive.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/apk_fixture.h"

namespace fcvm::rootfs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TarItem;

std::string Write(const std::string& name, const std::string& bytes) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
  return path;
}

std::string BusyboxApk() {
  absl::StatusOr<std::string> apk = testing::MakeApk(
      "pkgname = busybox\npkgver = 1.36.1-r29\narch = x86_64\n",
      {{.path = ".post-install",
        .data = "#!/bin/sh\n/bin/busybox --install -s\n",
        .mode = 0755},
       {.path = ".trigger", .data = "#!/bin/sh\n", .mode = 0755}},
      {{.path = "bin", .directory = true, .mode = 0755},
       {.path = "bin/busybox",
        .data = "\x7f"
                "ELF busybox",
        .mode = 04755},
       {.path = "bin/sh", .symlink = "/bin/busybox", .mode = 0777},
       {.path = "etc", .directory = true, .mode = 0755},
       {.path = "etc/shadow", .data = "root:*::\n", .mode = 0640, .gid = 42}});
  EXPECT_TRUE(apk.ok()) << apk.status();
  return apk.ok() ? *apk : "";
}

TEST(ApkArchiveTest, ControlHasPkginfoAndScripts) {
  const std::string path = Write("busybox.apk", BusyboxApk());
  absl::StatusOr<ApkControl> control = ReadApkControl(path);
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_THAT(control->pkginfo, HasSubstr("pkgname = busybox"));
  EXPECT_THAT(control->scripts, ElementsAre(".post-install", ".trigger"));
}

TEST(ApkArchiveTest, DataEntriesWithOwnersModesLinks) {
  const std::string path = Write("busybox2.apk", BusyboxApk());
  std::vector<std::string> seen;
  absl::Status status =
      ReadApkData(path, [&](const FileEntry& e, absl::string_view data) {
        seen.push_back(e.path);
        if (e.path == "bin/busybox") {
          EXPECT_EQ(e.mode, 04755u);
          EXPECT_EQ(data,
                    "\x7f"
                    "ELF busybox");
        }
        if (e.path == "bin/sh") {
          EXPECT_EQ(e.type, FileEntry::Type::kSymlink);
          EXPECT_EQ(e.link_target, "/bin/busybox");
        }
        if (e.path == "etc/shadow") {
          EXPECT_EQ(e.gid, 42u);
        }
        return absl::OkStatus();
      });
  ASSERT_TRUE(status.ok()) << status;
  // Signature and control entries are not data.
  EXPECT_THAT(seen,
              ElementsAre("bin", "bin/busybox", "bin/sh", "etc", "etc/shadow"));
}

TEST(ApkArchiveTest, EscapingPathIsRefused) {
  absl::StatusOr<std::string> apk = testing::MakeApk(
      "pkgname = evil\n", {}, {{.path = "../../etc/passwd", .data = "x"}});
  ASSERT_TRUE(apk.ok());
  const std::string path = Write("evil.apk", *apk);
  absl::Status status = ReadApkData(
      path,
      [](const FileEntry&, absl::string_view) { return absl::OkStatus(); });
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("escapes the image root"));
  EXPECT_THAT(status.message(), HasSubstr("evil.apk"));
}

TEST(ApkArchiveTest, TruncatedArchiveIsNamed) {
  const std::string whole = BusyboxApk();
  const std::string path = Write("cut.apk", whole.substr(0, whole.size() - 40));
  absl::Status status = ReadApkData(
      path,
      [](const FileEntry&, absl::string_view) { return absl::OkStatus(); });
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cut.apk"));
  EXPECT_FALSE(ReadApkControl(Write("empty.apk", "")).ok());
}

}  // namespace
}  // namespace fcvm::rootfs
