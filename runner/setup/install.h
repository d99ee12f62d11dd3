#ifndef FCVM_RUNNER_SETUP_INSTALL_H_
#define FCVM_RUNNER_SETUP_INSTALL_H_

// Releases installed on this host, behind `fcvm setup install|ls|rm`.
//
// PREFIX (default /var/lib/fcvm) holds one directory per version, the
// unpacked top directory of its release tarball (release/pack.h):
//   PREFIX/.lock          flock'ed by whoever installs or removes
//   PREFIX/VERSION/       bin/fcvm, share/fcvm/..., SHA256SUMS
//   PREFIX/current        symlink -> VERSION, the version last installed
//   PREFIX/.staging-*     an install or rm in progress (or killed: the next
//                         one removes it)
// A version directory appears, is replaced and disappears by one rename, so
// a reader (or a crash) sees the old release or the new one, never a mix.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fcvm::runner::setup {

inline constexpr char kDefaultPrefix[] = "/var/lib/fcvm";

// What uses an installed version's directory (the CLI: the live VMs whose
// kernel or disks are under it), by name.
using UsersOf = std::function<absl::StatusOr<std::vector<std::string>>(
    const std::string& dir)>;

struct InstallOptions {
  std::string tarball;
  std::string prefix = kDefaultPrefix;
  // "x86_64"/"aarch64": a tarball for another CPU is refused.
  std::string host_arch;
  // signify-openbsd public key file; empty: no signature check.
  std::string public_key;
  // Detached signature of SHA256SUMS; default TARBALL + ".sig" when
  // public_key is set.
  std::string signature;
  // Optional progress lines.
  std::function<void(const std::string&)> progress;
  // Replacing a different build of an installed version is refused while
  // anything uses it (its VMs would find other bytes under the same paths).
  // Null: nothing is asked.
  UsersOf users;
};

struct Installed {
  std::string version, arch, commit;
  std::string dir;  // PREFIX/VERSION
  // The same release was installed: nothing replaced (current still moves).
  bool already = false;
  uint64_t bytes = 0;  // Sum of the sizes of the release's files.
};

// Checks the release tarball (its layout, SHA256SUMS, MANIFEST.json and, with
// a public key, the signature of SHA256SUMS), unpacks it into PREFIX/VERSION
// (replacing a different build of the same version in one step, unless
// options.users names something using it) and points
// PREFIX/current at it. On any error, or if killed, the installed versions
// and `current` are as they were.
[[nodiscard]] absl::StatusOr<Installed> Install(const InstallOptions& options);

struct InstalledVersion {
  std::string version, arch, commit, dir;
  bool current = false;  // PREFIX/current points at it.
  uint64_t bytes = 0;    // Sum of the sizes of the files under dir.
  // Why its MANIFEST.json could not be read (then version is the directory's
  // name); empty when it was. Listed rather than hidden, so `rm` can be used.
  std::string problem;
};

// Every PREFIX/<dir> holding share/fcvm/MANIFEST.json, sorted by version
// string. A missing PREFIX is an empty list. Takes no lock: versions come and
// go by rename, so a listing never sees half a version.
[[nodiscard]] absl::StatusOr<std::vector<InstalledVersion>> ListInstalled(
    const std::string& prefix);

// Removes PREFIX/VERSION. `users` lists what uses a directory (the CLI passes
// the running VMs whose kernel/disks are under it): non-empty -> refused,
// naming them. Removing the version `current` points at is refused unless
// `force` (then `current` is removed too).
[[nodiscard]] absl::Status RemoveInstalled(const std::string& prefix,
                                           const std::string& version,
                                           bool force, const UsersOf& users);

}  // namespace fcvm::runner::setup

#endif  // FCVM_RUNNER_SETUP_INSTALL_H_
