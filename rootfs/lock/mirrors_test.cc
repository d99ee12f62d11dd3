#include "rootfs/lock/mirrors.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using ::testing::ElementsAre;
using testing::IsOkAndHolds;

// Host names here use the reserved .invalid domain: nothing real is named.
class MirrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(
        std::getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    mkdir(root_.c_str(), 0755);
    paths_.sources_list = root_ + "/sources.list";
    paths_.sources_dir = root_ + "/sources.list.d";
    mkdir(paths_.sources_dir.c_str(), 0755);
    unsetenv("FCVM_MIRROR_DEBIAN");
    unsetenv("FCVM_MIRROR_DEBIAN_SECURITY");
  }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomically(name, text).ok());
  }
  std::string root_;
  AptSourcePaths paths_;
};

TEST_F(MirrorsTest, ReadsDeb822AndOneLineFormats) {
  Write(paths_.sources_list,
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm "
        "main\n"
        "deb-src http://src.invalid/debian bookworm main\n");
  Write(paths_.sources_dir + "/b.sources",
        "Types: deb\nURIs: http://two.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n");
  Write(paths_.sources_dir + "/a.list", "deb http://three.invalid/other x y\n");
  Write(paths_.sources_dir + "/ignored.txt", "deb http://no.invalid/x a b\n");
  absl::StatusOr<std::vector<std::string>> uris = AptSourceUris(paths_);
  ASSERT_TRUE(uris.ok()) << uris.status();
  EXPECT_THAT(*uris, ElementsAre("http://one.invalid/debian",
                                 "http://three.invalid/other",
                                 "http://two.invalid/debian-security"));
}

TEST_F(MirrorsTest, FindsByPathSuffixNotPrefix) {
  Write(paths_.sources_dir + "/debian.sources",
        "URIs: http://m.invalid/debian-security/\nSuites: x\n\n"
        "URIs: http://m.invalid/debian/\nSuites: y\n");
  EXPECT_THAT(FindMirrorRoot("debian", paths_),
              IsOkAndHolds("http://m.invalid/debian"));
  EXPECT_THAT(FindMirrorRoot("debian-security", paths_),
              IsOkAndHolds("http://m.invalid/debian-security"));
}

TEST_F(MirrorsTest, EnvironmentWins) {
  Write(paths_.sources_list, "deb http://apt.invalid/debian bookworm main\n");
  setenv("FCVM_MIRROR_DEBIAN_SECURITY", "http://127.0.0.1:8080/sec/", 1);
  EXPECT_THAT(FindMirrorRoot("debian-security", paths_),
              IsOkAndHolds("http://127.0.0.1:8080/sec"));
  unsetenv("FCVM_MIRROR_DEBIAN_SECURITY");
}

TEST_F(MirrorsTest, MissingSaysHowToFix) {
  Write(paths_.sources_list, "deb http://apt.invalid/ubuntu jammy main\n");
  absl::StatusOr<std::string> root = FindMirrorRoot("debian", paths_);
  EXPECT_EQ(root.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(root.status().message(),
            "no mirror for 'debian': set FCVM_MIRROR_DEBIAN to its root URL, "
            "or add an apt source whose path ends in /debian (apt sources "
            "seen: http://apt.invalid/ubuntu)");
}

TEST_F(MirrorsTest, NoFilesAtAll) {
  AptSourcePaths nowhere{root_ + "/none.list", root_ + "/none.d"};
  EXPECT_TRUE(AptSourceUris(nowhere)->empty());
  EXPECT_THAT(std::string(FindMirrorRoot("debian", nowhere).status().message()),
              ::testing::HasSubstr("apt sources seen: none"));
}

}  // namespace
}  // namespace fcvm::rootfs
