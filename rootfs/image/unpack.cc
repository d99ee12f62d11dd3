#include "rootfs/image/unpack.h"

#include <fnmatch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "rootfs/archive/apk_archive.h"
#include "rootfs/archive/deb_archive.h"

namespace fcvm::rootfs {

[[nodiscard]] absl::Status CheckMaintainerScripts(
    const ImageDefinition& image,
    const std::map<std::string, std::vector<std::string>>& scripts_by_package) {
  std::map<std::string, int> covered;
  for (const MaintainerScripts& entry : image.maintainer_scripts()) {
    for (const std::string& package : entry.packages()) ++covered[package];
  }
  std::vector<std::string> missing, twice, empty_handling;
  for (const auto& [package, scripts] : scripts_by_package) {
    if (scripts.empty()) continue;
    auto it = covered.find(package);
    if (it == covered.end()) {
      missing.push_back(
          absl::StrCat(package, " (", absl::StrJoin(scripts, ", "), ")"));
    }
  }
  for (const auto& [package, count] : covered) {
    if (count > 1) twice.push_back(package);
  }
  for (const MaintainerScripts& entry : image.maintainer_scripts()) {
    if (entry.packages().empty()) {
      empty_handling.push_back(
          absl::StrCat("(no packages) ", entry.fixup(), entry.reason()));
    } else if (entry.handling_case() == MaintainerScripts::HANDLING_NOT_SET ||
               (entry.has_reason() && entry.reason().empty()) ||
               (entry.has_fixup() && entry.fixup().empty())) {
      empty_handling.push_back(absl::StrJoin(entry.packages(), ", "));
    }
  }
  std::vector<std::string> problems;
  if (!missing.empty()) {
    problems.push_back(absl::StrCat(
        "packages with maintainer scripts but no maintainer_scripts entry "
        "(give the fix-up that replaces them or the reason none is needed): ",
        absl::StrJoin(missing, "; ")));
  }
  if (!twice.empty()) {
    problems.push_back(absl::StrCat("packages named in more than one entry: ",
                                    absl::StrJoin(twice, ", ")));
  }
  if (!empty_handling.empty()) {
    problems.push_back(
        absl::StrCat("entries without packages, or with neither a fix-up "
                     "nor a reason: [",
                     absl::StrJoin(empty_handling, "], ["), "]"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "image '", image.name(), "': ", absl::StrJoin(problems, ". ")));
}

bool PathFilter::Keep(const std::string& path) const {
  const std::string absolute = "/" + path;
  auto matches = [&](const std::vector<std::string>& patterns) {
    for (const std::string& pattern : patterns) {
      if (fnmatch(pattern.c_str(), absolute.c_str(), 0) == 0) return true;
    }
    return false;
  };
  return !matches(exclude_) || matches(include_);
}

namespace {

using ArchiveReader = absl::Status (*)(
    const std::string& path,
    const std::function<absl::Status(const FileEntry&, absl::string_view)>&);

[[nodiscard]] absl::Status Unpack(ArchiveReader read,
                                  const std::string& package,
                                  const std::string& path, ImageSink& image,
                                  const EntryObserver& observe,
                                  const PathFilter& filter) {
  return Annotate(read(path,
                       [&](const FileEntry& entry, absl::string_view data) {
                         if (observe) observe(entry, data);
                         if (!filter.Keep(entry.path)) return absl::OkStatus();
                         return image.Add(entry, data);
                       }),
                  absl::StrCat("unpacking package ", package));
}

}  // namespace

[[nodiscard]] absl::Status UnpackDeb(const std::string& package,
                                     const std::string& deb_path,
                                     ImageSink& image,
                                     const EntryObserver& observe,
                                     const PathFilter& filter) {
  return Unpack(&ReadDebData, package, deb_path, image, observe, filter);
}

[[nodiscard]] absl::Status UnpackApk(const std::string& package,
                                     const std::string& apk_path,
                                     ImageSink& image,
                                     const EntryObserver& observe,
                                     const PathFilter& filter) {
  return Unpack(&ReadApkData, package, apk_path, image, observe, filter);
}

}  // namespace fcvm::rootfs
