#ifndef FCVM_ROOTFS_IMAGE_FIXUPS_H_
#define FCVM_ROOTFS_IMAGE_FIXUPS_H_

// What maintainer scripts would have done, computed from data instead of by
// running them: each function takes files the packages ship and returns the
// files the scripts would have written. The image assembler (assemble.h)
// captures the inputs while unpacking and writes the results.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::rootfs {

// base-passwd's masters (/usr/share/base-passwd/{passwd,group}.master) as
// /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow, every password
// locked. `epoch` (SOURCE_DATE_EPOCH) gives the shadow "last changed" day.
struct PasswdFiles {
  std::string passwd, group, shadow, gshadow;
};
[[nodiscard]] absl::StatusOr<PasswdFiles> MakePasswdFiles(
    absl::string_view passwd_master, absl::string_view group_master,
    int64_t epoch);

// update-ca-certificates with every certificate enabled: `certs` maps paths
// relative to /usr/share/ca-certificates ("mozilla/X.crt") to PEM text.
struct CaCertificates {
  std::string conf;    // /etc/ca-certificates.conf
  std::string bundle;  // /etc/ssl/certs/ca-certificates.crt
  // Symlinks in /etc/ssl/certs: "<name>.pem" -> the certificate, and
  // OpenSSL's "<subject hash>.<n>" -> "<name>.pem" (as `openssl rehash`).
  std::vector<std::pair<std::string, std::string>> links;
};
[[nodiscard]] absl::StatusOr<CaCertificates> MakeCaCertificates(
    const std::map<std::string, std::string>& certs);

// /var/lib/dpkg/status for packages installed from `controls` (each a
// DEBIAN/control file): dpkg -l and image scanners see what is installed.
std::string MakeDpkgStatus(const std::vector<std::string>& controls);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_IMAGE_FIXUPS_H_
