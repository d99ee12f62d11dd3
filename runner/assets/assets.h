#ifndef FCVM_RUNNER_ASSETS_ASSETS_H_
#define FCVM_RUNNER_ASSETS_ASSETS_H_

// Where `fcvm` finds the guest's assets (kernel, base.ext4, workload images)
// when no --kernel/--rootfs flags name them (`bazel run //runner:vm` does):
// a release's share/fcvm/ directory, found by its MANIFEST.json, from the
// first of
//   1. --assets DIR
//   2. $FCVM_ASSETS
//   3. ../share/fcvm next to the fcvm binary (an unpacked or installed
//      release: /var/lib/fcvm/VERSION/bin/fcvm -> ../share/fcvm)
//   4. /var/lib/fcvm/VERSION/share/fcvm (this binary's version, installed by
//      `fcvm setup install`)
// DIR may be the share/fcvm directory or the release's top directory.
// A directory named by 1 or 2 that holds no manifest is an error; 3 and 4
// are skipped when absent.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "release/manifest.pb.h"
#include "runner/vm/host_facts.h"

namespace fcvm::runner {

struct AssetSearch {
  std::string flag;      // --assets
  std::string env;       // $FCVM_ASSETS
  std::string self_exe;  // This binary (/proc/self/exe).
  std::string version;   // This binary's version.
  std::string prefix = "/var/lib/fcvm";
};

struct FoundAssets {
  std::string dir;  // Holds MANIFEST.json.
  std::string how;  // "--assets", "$FCVM_ASSETS", "next to the binary", ...
  release::ReleaseManifest manifest;
  // "DIR (how)": what preflight, inspect and --version say.
  std::string Describe() const;
};

// The first place of the search that holds a release; nullopt when none
// does (`searched` gets the places looked at, for the message).
[[nodiscard]] absl::StatusOr<std::optional<FoundAssets>> FindAssets(
    const AssetSearch& search, std::vector<std::string>* searched = nullptr);

// Fills the kernel, base.ext4 and images of `assets` from a release (flags
// already given win, image by image). The release must be for the guest's
// CPU (`assets->arch`); its files must be there.
[[nodiscard]] absl::Status UseRelease(const FoundAssets& found, Assets* assets);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_ASSETS_ASSETS_H_
