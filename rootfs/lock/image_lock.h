#ifndef FCVM_ROOTFS_LOCK_IMAGE_LOCK_H_
#define FCVM_ROOTFS_LOCK_IMAGE_LOCK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rootfs/image/image.pb.h"

namespace fcvm::rootfs {

struct LockOptions {
  // OpenPGP keyrings that sign the mirrors' InRelease files.
  std::vector<std::string> keyrings = {
      "/usr/share/keyrings/debian-archive-keyring.gpg"};
  // Public keys that may sign Alpine APKINDEX files (named as the key in
  // the signature).
  std::string apk_keys_dir = "/etc/apk/keys";
  // Scratch space for downloads (must exist).
  std::string scratch_dir = "/tmp";
};

// Resolves `image` for Debian architecture `arch` against the mirrors of its
// sources: for each source, fetches dists/<suite>/InRelease, checks its
// signature, fetches each component's Packages.xz and checks it against the
// signed SHA256, then resolves the dependency closure of the image's
// packages. The result is sorted and depends only on the indexes.
//
// For package_format "apk" (Alpine): fetches each source's
// <suite>/<component>/<arch>/APKINDEX.tar.gz, checks its signature against
// apk_keys_dir, resolves the closure with apk's rules, and downloads every
// chosen .apk once to check it against the signed index (control checksum
// and datahash) and record its sha256, which APKINDEX does not carry.
[[nodiscard]] absl::StatusOr<Lockfile> LockImage(const ImageDefinition& image,
                                                 const std::string& arch,
                                                 const LockOptions& options);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_IMAGE_LOCK_H_
