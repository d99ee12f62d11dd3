#include "release/manifest.h"

#include "gtest/gtest.h"

namespace fcvm::release {
namespace {

TEST(ManifestTest, RoundTrip) {
  ReleaseManifest manifest;
  manifest.set_version("1.2.3");
  manifest.set_arch("aarch64");
  manifest.set_name(ReleaseName("1.2.3", "aarch64"));
  manifest.set_kernel("vmlinux");
  manifest.set_rootfs("base.ext4");
  FileEntry* file = manifest.add_files();
  file->set_path("bin/fcvm");
  file->set_size(12);
  file->set_mode("0755");
  const std::string json = ManifestJson(manifest);
  EXPECT_EQ(json, ManifestJson(manifest));
  absl::StatusOr<ReleaseManifest> parsed = ParseManifest(json, "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name(), "fcvm-1.2.3-linux-aarch64");
  EXPECT_EQ(parsed->files(0).size(), 12u);
}

TEST(ManifestTest, Refusals) {
  EXPECT_FALSE(ParseManifest("{", "m").ok());
  EXPECT_FALSE(ParseManifest(R"({"version":"1","arch":"x86_64",
      "name":"fcvm-1-linux-x86_64","kernel":"k","rootfs":"r","new":1})",
                             "m")
                   .ok());
  // Arch, name, paths.
  EXPECT_FALSE(ParseManifest(R"({"version":"1","arch":"riscv64",
      "name":"fcvm-1-linux-riscv64","kernel":"k","rootfs":"r"})",
                             "m")
                   .ok());
  EXPECT_FALSE(ParseManifest(R"({"version":"1","arch":"x86_64",
      "name":"fcvm-2-linux-x86_64","kernel":"k","rootfs":"r"})",
                             "m")
                   .ok());
  absl::StatusOr<ReleaseManifest> escape = ParseManifest(R"({"version":"1",
      "arch":"x86_64","name":"fcvm-1-linux-x86_64","kernel":"../k",
      "rootfs":"r"})",
                                                         "MANIFEST.json");
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.status().message().find("MANIFEST.json: asset path '../k'"),
            std::string::npos)
      << escape.status();
}

TEST(ManifestTest, CleanPaths) {
  EXPECT_TRUE(IsCleanRelativePath("share/fcvm/base.ext4"));
  for (const char* bad :
       {"", "/etc/passwd", "a/../b", "./a", "a//b", "a/", "..", "a\nb"}) {
    EXPECT_FALSE(IsCleanRelativePath(bad)) << bad;
  }
}

TEST(ManifestTest, Sums) {
  Sums sums = {{"b", std::string(64, 'b')}, {"a/x", std::string(64, 'a')}};
  const std::string text = SumsText(sums);
  EXPECT_EQ(text,
            std::string(64, 'a') + "  a/x\n" + std::string(64, 'b') + "  b\n");
  absl::StatusOr<Sums> parsed = ParseSums(text, "SHA256SUMS");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, sums);
  EXPECT_FALSE(ParseSums("", "S").ok());
  EXPECT_FALSE(ParseSums(std::string(64, 'A') + "  a\n", "S").ok());
  EXPECT_FALSE(ParseSums(std::string(64, 'a') + " a\n", "S").ok());
  EXPECT_FALSE(ParseSums(std::string(64, 'a') + "  ../a\n", "S").ok());
  EXPECT_FALSE(
      ParseSums(std::string(64, 'a') + "  a\n" + std::string(64, 'b') + "  a\n",
                "S")
          .ok());
}

}  // namespace
}  // namespace fcvm::release
