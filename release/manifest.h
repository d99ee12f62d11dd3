#ifndef FCVM_RELEASE_MANIFEST_H_
#define FCVM_RELEASE_MANIFEST_H_

// The two documents of a release tarball that say what is in it, shared by
// the packer (release/pack.h) and `fcvm setup install`:
//   <top>/share/fcvm/MANIFEST.json  ReleaseManifest (release/manifest.proto)
//   <top>/SHA256SUMS                "<sha256>  <path>" per file, `sha256sum
//                                   -c` compatible, every file but itself.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "release/manifest.pb.h"

namespace fcvm::release {

inline constexpr char kManifestPath[] = "share/fcvm/MANIFEST.json";
inline constexpr char kSumsPath[] = "SHA256SUMS";
// The manifest's directory: where `fcvm` finds its assets in a release.
inline constexpr char kAssetsDir[] = "share/fcvm";

// "fcvm-0.17.0-linux-x86_64".
std::string ReleaseName(absl::string_view version, absl::string_view arch);

// The manifest as JSON (deterministic: same message, same bytes).
std::string ManifestJson(const ReleaseManifest& manifest);
// Parses and checks a manifest: `what` names it in errors. Unknown fields
// are refused (a newer format is not read as an older one).
[[nodiscard]] absl::StatusOr<ReleaseManifest> ParseManifest(
    absl::string_view json, absl::string_view what);

// path -> sha256 hex, in path order.
using Sums = std::map<std::string, std::string>;
std::string SumsText(const Sums& sums);
[[nodiscard]] absl::StatusOr<Sums> ParseSums(absl::string_view text,
                                             absl::string_view what);

// A path inside a release: relative, no "." or ".." component, no empty
// component, printable.
bool IsCleanRelativePath(absl::string_view path);

}  // namespace fcvm::release

#endif  // FCVM_RELEASE_MANIFEST_H_
