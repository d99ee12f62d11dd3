// fcvm --version: the version (release/version.bzl), the source commit (a
// release's MANIFEST.json records it; a development build has none), and
// the assets this fcvm would use with their sha256, each also checked
// against the release's manifest when they come from one.
#include <cstdio>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/sha256.h"
#include "release/manifest.h"
#include "release/version.h"
#include "runner/cli/command.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner {

int PrintVersion(Context& ctx) {
  std::printf("fcvm %s (linux %s)\n", release::kVersion, HostArch().c_str());
  // What the manifest says of each file, by absolute path.
  std::map<std::string, std::string> recorded;
  if (ctx.release.has_value()) {
    const release::ReleaseManifest& m = ctx.release->manifest;
    std::printf("commit:  %s\n", m.commit().c_str());
    // Manifest paths are under the top directory; the assets directory is
    // its share/fcvm.
    const std::string share = absl::StrCat(release::kAssetsDir, "/");
    for (const release::FileEntry& file : m.files()) {
      if (!absl::StartsWith(file.path(), share)) continue;
      recorded[absl::StrCat(ctx.release->dir, "/",
                            file.path().substr(share.size()))] = file.sha256();
    }
  } else {
    std::printf(
        "commit:  not recorded (a development build: a release's "
        "MANIFEST.json has it)\n");
  }
  std::printf("assets:  %s\n", ctx.assets.source.c_str());
  std::vector<std::pair<std::string, std::string>> files = {
      {"kernel", ctx.assets.kernel}, {"base.ext4", ctx.assets.rootfs}};
  for (const auto& [name, path] : ctx.assets.oci) {
    files.push_back({absl::StrCat("image ", name, " (oci)"), path});
  }
  for (const auto& [name, path] : ctx.assets.image_rootfs) {
    files.push_back({absl::StrCat("image ", name, " (rootfs)"), path});
  }
  int code = 0;
  for (const auto& [what, path] : files) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> digest = Sha256File(path);
    if (!digest.ok()) {
      std::printf("  %-28s %s\n", what.c_str(),
                  std::string(digest.status().message()).c_str());
      code = 1;
      continue;
    }
    const auto it = recorded.find(path);
    const bool changed = it != recorded.end() && it->second != *digest;
    if (changed) code = 1;
    std::printf("  %-28s sha256:%s  %s%s\n", what.c_str(), digest->c_str(),
                path.c_str(),
                changed ? "  CHANGED since the release was made" : "");
  }
  return code;
}

}  // namespace fcvm::runner
