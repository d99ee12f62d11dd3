#ifndef FCVM_ROOTFS_LOCK_APK_SIGNATURE_H_
#define FCVM_ROOTFS_LOCK_APK_SIGNATURE_H_

#include <string>

#include "absl/status/statusor.h"

namespace fcvm::rootfs {

// Checks the signature of an Alpine APKINDEX.tar.gz (or .apk): its first
// gzip member is a tar holding ".SIGN.RSA.<key>" (RSA, SHA-1) or
// ".SIGN.RSA256.<key>" (RSA, SHA-256), a signature over every byte after
// that member; <key> names a PEM public key in `keys_dir` (Alpine keeps
// them in /etc/apk/keys). Returns the key's name. Fails naming the file and
// the key when the key is unknown or the signature does not verify.
[[nodiscard]] absl::StatusOr<std::string> VerifyApkSignature(
    const std::string& path, const std::string& keys_dir);

// Checks a downloaded .apk against its APKINDEX entry: `checksum` (the C:
// field, "Q1" + base64 of the SHA-1 of the control segment) must match the
// package's control segment, and the control's datahash (SHA-256 of the
// data segment) the data. The index is signed, so this ties the package to
// the signature. Fails naming the file and both values.
[[nodiscard]] absl::Status VerifyApkPackage(const std::string& path,
                                            const std::string& checksum);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_APK_SIGNATURE_H_
