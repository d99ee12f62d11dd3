#ifndef FCVM_ROOTFS_TESTING_SIGNING_KEY_H_
#define FCVM_ROOTFS_TESTING_SIGNING_KEY_H_

#include <string>

#include "absl/status/statusor.h"

namespace fcvm::rootfs::testing {

// A throwaway OpenPGP signing key made by gpg in a private home directory,
// like an archive key: tests clear-sign InRelease files with it and verify
// them against its public keyring. Destroying it stops gpg's agent and
// removes the directory.
class SigningKey {
 public:
  // Makes a new ed25519 key with user id `name`.
  [[nodiscard]] static absl::StatusOr<SigningKey> Create(
      const std::string& name);

  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&&) = delete;
  ~SigningKey();

  // A keyring file with the public key, for gpgv --keyring.
  const std::string& keyring() const { return keyring_; }

  // Clear-signs `text` into the file `path` (an InRelease).
  [[nodiscard]] absl::Status ClearSign(const std::string& text,
                                       const std::string& path) const;

 private:
  SigningKey() = default;
  [[nodiscard]] absl::Status Gpg(std::vector<std::string> args) const;

  std::string home_;
  std::string name_;
  std::string keyring_;
};

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_SIGNING_KEY_H_
