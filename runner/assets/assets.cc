#include "runner/assets/assets.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "release/manifest.h"

namespace fcvm::runner {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The manifest directory of `dir`: itself or its share/fcvm; empty if
// neither holds MANIFEST.json.
std::string ManifestDir(const std::string& dir) {
  if (IsFile(absl::StrCat(dir, "/MANIFEST.json"))) return dir;
  const std::string share = absl::StrCat(dir, "/", release::kAssetsDir);
  if (IsFile(absl::StrCat(share, "/MANIFEST.json"))) return share;
  return "";
}

[[nodiscard]] absl::StatusOr<FoundAssets> Load(const std::string& dir,
                                               const std::string& how) {
  const std::string path = absl::StrCat(dir, "/MANIFEST.json");
  ASSIGN_OR_RETURN(std::string json, ReadFile(path));
  ASSIGN_OR_RETURN(release::ReleaseManifest manifest,
                   release::ParseManifest(json, path));
  return FoundAssets{dir, how, std::move(manifest)};
}

}  // namespace

std::string FoundAssets::Describe() const {
  return absl::StrCat(dir, " (", how, ", release ", manifest.version(), " ",
                      manifest.arch(), ")");
}

[[nodiscard]] absl::StatusOr<std::optional<FoundAssets>> FindAssets(
    const AssetSearch& search, std::vector<std::string>* searched) {
  auto note = [&](const std::string& place) {
    if (searched != nullptr) searched->push_back(place);
  };
  for (const auto& [value, how] :
       {std::make_pair(search.flag, std::string("--assets")),
        std::make_pair(search.env, std::string("$FCVM_ASSETS"))}) {
    if (value.empty()) continue;
    const std::string dir = ManifestDir(value);
    if (dir.empty()) {
      return absl::NotFoundError(
          absl::StrCat(how, " '", value, "': no MANIFEST.json there or in its ",
                       release::kAssetsDir, "/ (give a release's directory)"));
    }
    ASSIGN_OR_RETURN(FoundAssets found, Load(dir, how));
    return found;
  }
  if (!search.self_exe.empty()) {
    const std::string share = absl::StrCat(Dirname(Dirname(search.self_exe)),
                                           "/", release::kAssetsDir);
    note(share);
    if (IsFile(absl::StrCat(share, "/MANIFEST.json"))) {
      ASSIGN_OR_RETURN(FoundAssets found, Load(share, "next to the binary"));
      return found;
    }
  }
  if (!search.version.empty() && !search.prefix.empty()) {
    const std::string share = absl::StrCat(search.prefix, "/", search.version,
                                           "/", release::kAssetsDir);
    note(share);
    if (IsFile(absl::StrCat(share, "/MANIFEST.json"))) {
      ASSIGN_OR_RETURN(FoundAssets found,
                       Load(share, absl::StrCat("installed ", search.version)));
      return found;
    }
  }
  return std::nullopt;
}

[[nodiscard]] absl::Status UseRelease(const FoundAssets& found,
                                      Assets* assets) {
  const release::ReleaseManifest& m = found.manifest;
  if (m.arch() != assets->arch) {
    return absl::FailedPreconditionError(
        absl::StrCat("the assets in ", found.Describe(), " are for ", m.arch(),
                     " guests, not ", assets->arch, " (--arch)"));
  }
  auto file = [&](const std::string& relative) -> absl::StatusOr<std::string> {
    const std::string path = absl::StrCat(found.dir, "/", relative);
    if (!IsFile(path)) {
      return absl::NotFoundError(absl::StrCat(path, ": missing (named by ",
                                              found.dir, "/MANIFEST.json)"));
    }
    return path;
  };
  if (assets->kernel.empty()) {
    ASSIGN_OR_RETURN(assets->kernel, file(m.kernel()));
  }
  if (assets->rootfs.empty()) {
    ASSIGN_OR_RETURN(assets->rootfs, file(m.rootfs()));
  }
  for (const release::ImageAssets& image : m.images()) {
    if (assets->oci.count(image.name())) continue;
    ASSIGN_OR_RETURN(assets->oci[image.name()], file(image.oci()));
    if (!image.rootfs().empty() && !assets->image_rootfs.count(image.name())) {
      ASSIGN_OR_RETURN(assets->image_rootfs[image.name()],
                       file(image.rootfs()));
    }
  }
  assets->source = found.Describe();
  return absl::OkStatus();
}

}  // namespace fcvm::runner
