#include "rootfs/testing/signing_key.h"

#include <stdlib.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/subprocess.h"

namespace fcvm::rootfs::testing {

[[nodiscard]] absl::StatusOr<SigningKey> SigningKey::Create(
    const std::string& name) {
  SigningKey key;
  // gpg-agent listens on a Unix socket in the home directory: keep the path
  // well under the 108-byte limit (TEST_TMPDIR can be longer).
  char home[] = "/tmp/fcvm-gpg.XXXXXX";
  if (mkdtemp(home) == nullptr) return absl::InternalError("mkdtemp failed");
  key.home_ = home;
  key.name_ = name;
  key.keyring_ = key.home_ + "/keyring.gpg";
  if (absl::Status s =
          key.Gpg({"--quick-gen-key", name, "ed25519", "sign", "never"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = key.Gpg({"--output", key.keyring_, "--export", name});
      !s.ok()) {
    return s;
  }
  return key;
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : home_(std::exchange(other.home_, "")),
      name_(std::move(other.name_)),
      keyring_(std::move(other.keyring_)) {}

SigningKey::~SigningKey() {
  if (home_.empty()) return;
  RunCommand({.argv = {"gpgconf", "--homedir", home_, "--kill", "all"}},
             absl::Seconds(30))
      .IgnoreError();
  std::error_code ignored;
  std::filesystem::remove_all(home_, ignored);
}

[[nodiscard]] absl::Status SigningKey::Gpg(
    std::vector<std::string> args) const {
  std::vector<std::string> argv = {"gpg",     "--homedir",       home_,
                                   "--batch", "--yes",           "--passphrase",
                                   "",        "--pinentry-mode", "loopback"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand({.argv = argv}, absl::Seconds(60)).status();
}

[[nodiscard]] absl::Status SigningKey::ClearSign(
    const std::string& text, const std::string& path) const {
  if (absl::Status s = WriteFileAtomically(path + ".in", text); !s.ok())
    return s;
  return Gpg(
      {"--local-user", name_, "--output", path, "--clearsign", path + ".in"});
}

}  // namespace fcvm::rootfs::testing
