#ifndef FCVM_RELEASE_PACK_H_
#define FCVM_RELEASE_PACK_H_

// Writes a release tarball: fcvm-VERSION-linux-ARCH.tar.gz holding one top
// directory with bin/fcvm, share/fcvm/ (kernel, base.ext4, images, the
// kernel .config, lockfiles, MANIFEST.json) and SHA256SUMS.
//
// Reproducible by construction: entries in byte order of their paths, every
// parent directory its own entry, owners 0/0 (root), every mtime the
// manifest's source_date_epoch, modes 0755 or 0644 only, no other metadata
// (pax headers only where ustar cannot say it), and a gzip stream with no
// timestamp and no name. Nothing about the machine, the checkout or the
// output base reaches the archive: the same inputs give the same bytes.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "release/manifest.pb.h"

namespace fcvm::release {

struct PackFile {
  std::string path;    // Under the top directory, e.g. "share/fcvm/vmlinux".
  std::string source;  // Where it is now.
  bool executable = false;
};

struct PackInput {
  std::string name;  // e.g. "images/base/amd64.lock".
  std::string source;
};

struct PackRequest {
  // version, commit, source_date_epoch, arch and the asset roles; name,
  // inputs and files are filled in by Pack.
  ReleaseManifest manifest;
  std::vector<PackFile> files;
  std::vector<PackInput> inputs;  // Digested into manifest.inputs.
  std::string out;                // The .tar.gz to write.
};

// Writes the tarball. Errors name the file at fault (a missing input, a
// path given twice, an asset role naming no file).
[[nodiscard]] absl::Status Pack(const PackRequest& request);

}  // namespace fcvm::release

#endif  // FCVM_RELEASE_PACK_H_
