#ifndef FCVM_ROOTFS_LOCK_RELEASE_H_
#define FCVM_ROOTFS_LOCK_RELEASE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::rootfs {

// The parts of a Debian Release file the lock tool uses.
struct Release {
  std::string suite;
  std::string codename;
  std::vector<std::string> architectures;
  std::vector<std::string> components;
  struct Entry {
    uint64_t size = 0;
    std::string sha256;
  };
  // Index path relative to dists/<suite>/ -> its size and SHA256.
  std::map<std::string, Entry> sha256;
};

// Parses the (already verified) text of a Release file.
[[nodiscard]] absl::StatusOr<Release> ParseRelease(absl::string_view text);

// Checks the OpenPGP signature of the InRelease file at `path` with gpgv
// against `keyrings` (e.g. /usr/share/keyrings/debian-archive-keyring.gpg)
// and returns the signed text, which is all that may be trusted. Fails,
// quoting gpgv, on a bad or unknown signature.
[[nodiscard]] absl::StatusOr<std::string> VerifyInRelease(
    const std::string& path, const std::vector<std::string>& keyrings,
    const std::string& scratch_dir);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_RELEASE_H_
