#ifndef FCVM_ROOTFS_IMAGE_UNPACK_H_
#define FCVM_ROOTFS_IMAGE_UNPACK_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/image.pb.h"
#include "rootfs/image/image_sink.h"

namespace fcvm::rootfs {

// Checks that every package in `scripts_by_package` (package -> the
// maintainer scripts it ships) is covered by exactly one MaintainerScripts
// entry of `image`. Fails listing every uncovered package with its scripts,
// and every package named twice, so one run shows all that is missing.
[[nodiscard]] absl::Status CheckMaintainerScripts(
    const ImageDefinition& image,
    const std::map<std::string, std::vector<std::string>>& scripts_by_package);

// Sees each entry added, with a regular file's contents (fix-ups capture
// the files they need this way).
using EntryObserver =
    std::function<void(const FileEntry& entry, absl::string_view data)>;

// Which archive paths go into the image: dpkg's path-exclude/path-include
// (fnmatch on "/<path>" without FNM_PATHNAME, so '*' matches '/').
class PathFilter {
 public:
  PathFilter() = default;
  PathFilter(std::vector<std::string> exclude, std::vector<std::string> include)
      : exclude_(std::move(exclude)), include_(std::move(include)) {}
  // `path` as in FileEntry: relative, no leading '/'.
  bool Keep(const std::string& path) const;

 private:
  std::vector<std::string> exclude_, include_;
};

// Unpacks the data of the .deb at `deb_path` (package `package`) into
// `image`, as dpkg would lay it out, without running anything; `observe`
// sees every entry, kept or not, and entries `filter` drops are left out.
// Errors name the package.
[[nodiscard]] absl::Status UnpackDeb(const std::string& package,
                                     const std::string& deb_path,
                                     ImageSink& image,
                                     const EntryObserver& observe = {},
                                     const PathFilter& filter = {});

// The same for an Alpine .apk (its data segment).
[[nodiscard]] absl::Status UnpackApk(const std::string& package,
                                     const std::string& apk_path,
                                     ImageSink& image,
                                     const EntryObserver& observe = {},
                                     const PathFilter& filter = {});

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_UNPACK_H_
