#include "runner/assets/assets.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "release/manifest.h"

namespace fcvm::runner {
namespace {

// A release's top directory under TEST_TMPDIR: bin/fcvm, share/fcvm/ with
// a manifest naming a kernel, base.ext4 and one image.
std::string MakeRelease(const std::string& name, const std::string& arch) {
  const std::string top = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  for (const std::string& dir :
       {top, top + "/bin", top + "/share", top + "/share/fcvm",
        top + "/share/fcvm/images"}) {
    mkdir(dir.c_str(), 0755);
  }
  release::ReleaseManifest m;
  m.set_version("1.0.0");
  m.set_arch(arch);
  m.set_name(release::ReleaseName("1.0.0", arch));
  m.set_kernel("vmlinux");
  m.set_rootfs("base.ext4");
  release::ImageAssets* image = m.add_images();
  image->set_name("nginx");
  image->set_oci("images/nginx.oci.tar");
  image->set_rootfs("images/nginx.rootfs.ext4");
  EXPECT_TRUE(WriteFileAtomically(top + "/share/fcvm/MANIFEST.json",
                                  release::ManifestJson(m))
                  .ok());
  for (const char* file : {"vmlinux", "base.ext4", "images/nginx.oci.tar",
                           "images/nginx.rootfs.ext4"}) {
    EXPECT_TRUE(
        WriteFileAtomically(absl::StrCat(top, "/share/fcvm/", file), "x").ok());
  }
  EXPECT_TRUE(WriteFileAtomically(top + "/bin/fcvm", "").ok());
  return top;
}

TEST(AssetsTest, SearchOrder) {
  const std::string a = MakeRelease("a", "x86_64");
  const std::string b = MakeRelease("b", "x86_64");
  const std::string c = MakeRelease("c", "x86_64");
  AssetSearch search;
  search.flag = a;
  search.env = b + "/share/fcvm";
  search.self_exe = c + "/bin/fcvm";
  auto found = FindAssets(search);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->dir, a + "/share/fcvm");
  EXPECT_EQ((*found)->how, "--assets");

  search.flag.clear();
  found = FindAssets(search);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->dir, b + "/share/fcvm");
  EXPECT_EQ((*found)->how, "$FCVM_ASSETS");

  search.env.clear();
  found = FindAssets(search);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->dir, c + "/share/fcvm");
  EXPECT_EQ((*found)->how, "next to the binary");
  EXPECT_NE((*found)->Describe().find("release 1.0.0 x86_64"),
            std::string::npos);

  // Installed: PREFIX/VERSION/share/fcvm.
  const std::string prefix =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/prefix");
  mkdir(prefix.c_str(), 0755);
  ASSERT_EQ(
      rename(MakeRelease("d", "x86_64").c_str(), (prefix + "/1.0.0").c_str()),
      0);
  search.self_exe = "/usr/bin/fcvm";
  search.version = "1.0.0";
  search.prefix = prefix;
  std::vector<std::string> searched;
  found = FindAssets(search, &searched);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->dir, prefix + "/1.0.0/share/fcvm");
  EXPECT_EQ(searched.size(), 2u);

  search.version = "2.0.0";
  searched.clear();
  found = FindAssets(search, &searched);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(searched, (std::vector<std::string>{"/usr/share/fcvm",
                                                prefix + "/2.0.0/share/fcvm"}));
}

TEST(AssetsTest, NamedDirectoryWithoutManifestIsAnError) {
  AssetSearch search;
  search.env = std::getenv("TEST_TMPDIR");
  auto found = FindAssets(search);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("$FCVM_ASSETS '"),
            absl::string_view::npos)
      << found.status();
}

TEST(AssetsTest, UseRelease) {
  const std::string top = MakeRelease("use", "aarch64");
  AssetSearch search;
  search.flag = top;
  auto found = FindAssets(search);
  ASSERT_TRUE(found.ok() && found->has_value());
  Assets assets;
  assets.arch = "x86_64";
  absl::Status used = UseRelease(**found, &assets);
  EXPECT_NE(used.message().find("are for aarch64 guests, not x86_64"),
            absl::string_view::npos)
      << used;
  assets.arch = "aarch64";
  assets.oci["nginx"] = "/mine.tar";  // A flag wins over the release.
  ASSERT_TRUE(UseRelease(**found, &assets).ok());
  EXPECT_EQ(assets.kernel, top + "/share/fcvm/vmlinux");
  EXPECT_EQ(assets.rootfs, top + "/share/fcvm/base.ext4");
  EXPECT_EQ(assets.oci["nginx"], "/mine.tar");
  EXPECT_EQ(assets.image_rootfs.count("nginx"), 0u);
  EXPECT_NE(assets.source.find("--assets"), std::string::npos);

  ASSERT_EQ(unlink((top + "/share/fcvm/base.ext4").c_str()), 0);
  Assets missing;
  missing.arch = "aarch64";
  EXPECT_NE(UseRelease(**found, &missing).message().find("base.ext4: missing"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace fcvm::runner
