#include "rootfs/image/unpack.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

ImageDefinition Definition(const std::string& text) {
  ImageDefinition image;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &image))
      << text;
  return image;
}

TEST(CheckMaintainerScriptsTest, EveryPackageWithScriptsIsCovered) {
  ImageDefinition image = Definition(R"pb(
    name: "t"
    maintainer_scripts {
      packages: "libc6"
      packages: "libacl1"
      reason: "ldconfig trigger only"
    }
    maintainer_scripts { packages: "ca-certificates" fixup: "ca-bundle" }
  )pb");
  EXPECT_TRUE(
      CheckMaintainerScripts(image, {{"libc6", {"postinst", "triggers"}},
                                     {"libacl1", {"triggers"}},
                                     {"ca-certificates", {"postinst"}},
                                     {"busybox-static", {}}})
          .ok());
}

TEST(CheckMaintainerScriptsTest, ListsEverythingMissingAtOnce) {
  ImageDefinition image = Definition(R"pb(
    name: "base"
    maintainer_scripts { packages: "libc6" reason: "x" }
    maintainer_scripts { packages: "libc6" packages: "dpkg" }
    maintainer_scripts { fixup: "passwd" }
  )pb");
  absl::Status status =
      CheckMaintainerScripts(image, {{"libc6", {"postinst"}},
                                     {"podman", {"postinst", "prerm"}},
                                     {"iptables", {"postinst"}},
                                     {"dpkg", {"postinst"}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      status.message(),
      "image 'base': packages with maintainer scripts but no "
      "maintainer_scripts entry (give the fix-up that replaces them or the "
      "reason none is needed): iptables (postinst); podman (postinst, "
      "prerm). packages named in more than one entry: libc6. entries without "
      "packages, or with neither a fix-up nor a reason: [libc6, dpkg], "
      "[(no packages) passwd]");
}

TEST(PathFilterTest, ExcludeUnlessIncludedLikeDpkg) {
  PathFilter filter({"/usr/share/doc/*", "/usr/share/locale/*"},
                    {"/usr/share/doc/*/copyright"});
  EXPECT_TRUE(filter.Keep("usr/bin/podman"));
  EXPECT_FALSE(filter.Keep("usr/share/doc/podman/changelog.Debian.gz"));
  EXPECT_TRUE(filter.Keep("usr/share/doc/podman/copyright"));
  // '*' crosses '/', as in dpkg.
  EXPECT_FALSE(filter.Keep("usr/share/locale/de/LC_MESSAGES/gpg.mo"));
  EXPECT_TRUE(filter.Keep("usr/share/doc"));
  EXPECT_TRUE(PathFilter().Keep("anything"));
}

}  // namespace
}  // namespace fcvm::rootfs
