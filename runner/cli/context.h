#ifndef FCVM_RUNNER_CLI_CONTEXT_H_
#define FCVM_RUNNER_CLI_CONTEXT_H_

// What every `fcvm` command gets from the global flags: the state store,
// the guest's assets, the firecracker to use, and the caller's working
// directory, which relative paths on the command line are relative to
// (`bazel run` starts us in the runfiles tree; BUILD_WORKING_DIRECTORY is
// where the user was).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runner/assets/assets.h"
#include "runner/state/state_store.h"
#include "runner/vm/host_facts.h"

namespace fcvm::runner {

struct Context {
  // Global flags as given.
  std::string state_dir;
  std::string kernel, rootfs, arch, firecracker;
  std::string assets_dir;                 // --assets
  std::vector<std::string> oci;           // NAME=ARCHIVE
  std::vector<std::string> image_rootfs;  // NAME=EXT4
  // --cache_max_bytes: the startup cache's size limit ("8g", bytes).
  std::string cache_max_bytes;

  // After Finish().
  std::string workdir;
  Assets assets;  // assets.source says where they came from.
  // The release the assets came from, when they did (runner/assets).
  std::optional<FoundAssets> release;
  StateStore store{""};

  // Resolves the flags: paths made absolute against the caller's working
  // directory, --oci and --image-rootfs split, the store's root chosen, the
  // assets found (--kernel/--rootfs given: those; else a release, see
  // runner/assets/assets.h). Usage errors name the flag; a release named by
  // --assets or $FCVM_ASSETS that cannot be used is an error, one found on
  // the way is skipped with the reason in assets.source.
  [[nodiscard]] absl::Status Finish();

  // The assets part of Finish().
  [[nodiscard]] absl::Status FindTheAssets();

  // `path` absolute: as it is, or relative to the caller's directory.
  std::string Resolve(const std::string& path) const;
  // --cache_max_bytes, checked (default kDefaultCacheMaxBytes).
  [[nodiscard]] absl::StatusOr<uint64_t> CacheMaxBytes() const;
  // What GatherHostFacts needs from us.
  FactsRequest Facts() const;
  // The command line of `fcvm netns-holder` (this binary, this store).
  std::vector<std::string> HolderArgv() const;
  // This program and its --state_dir: how to run fcvm again (the memory
  // server a uffd clone starts).
  std::vector<std::string> SelfArgv() const;
  // SelfArgv() and every other global flag as given (paths made absolute):
  // how to run another fcvm command with the same assets (`fcvm api`'s
  // create runs `fcvm run -d`).
  std::vector<std::string> GlobalArgv() const;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_CLI_CONTEXT_H_
