#ifndef FCVM_RUNNER_API_AUTH_H_
#define FCVM_RUNNER_API_AUTH_H_

// Who may call `fcvm api`, as the E2B SDKs present it: an API key in
// X-API-KEY for the control plane (--api-keys-file), a per-sandbox access
// token in X-Access-Token for the agent surface (minted at create), and
// the Unix user in "Authorization: Basic base64(user:)" for commands and
// files (../shared/notes/e2b-compat.md §1.3).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::runner::api {

// Equal, in time that depends on the lengths only, never on where the
// bytes first differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class ApiKeys {
 public:
  // The keys in `path`: one per line; blank lines and lines starting with
  // '#' skipped; surrounding spaces dropped. Refused: a file others may
  // read or write (mode & 077), an empty list, a key with spaces inside or
  // shorter than 16 characters. Errors name the file and the line.
  [[nodiscard]] static absl::StatusOr<ApiKeys> Load(const std::string& path);
  // Keys given directly (tests).
  [[nodiscard]] static absl::StatusOr<ApiKeys> FromList(
      const std::vector<std::string>& keys, absl::string_view source);

  // Whether `presented` is one of the keys. Every stored key is compared
  // (as SHA-256 digests, in constant time), so neither the time nor the
  // order of the keys tells which one was close.
  bool Accepts(absl::string_view presented) const;
  size_t size() const { return digests_.size(); }

 private:
  std::vector<std::string> digests_;
};

// A new secret for a sandbox's agent surface: 32 random bytes from the
// kernel (getrandom), as 64 hex digits.
[[nodiscard]] absl::StatusOr<std::string> MintAccessToken();

// Sandboxes' access tokens (X-Access-Token on the agent surface), derived
// rather than kept: HMAC-SHA256(key, "<name>\n<vm id>") as 64 hex digits,
// with one key per state store (<root>/api/access-token.key, 0600, made
// on first use). So `fcvm api` restarted answers connect with the same
// token, no token is written anywhere or passed on a command line, and a
// VM recreated under the same name (a new id) gets a new one.
class AccessTokens {
 public:
  // The key at `path`, made (32 random bytes, 0600; its directory 0700)
  // if there is none. A key file others may read is refused.
  [[nodiscard]] static absl::StatusOr<AccessTokens> Open(
      const std::string& path);
  // Tests.
  static AccessTokens FromKey(std::string key) {
    return AccessTokens(std::move(key));
  }

  std::string For(const std::string& name, const std::string& vm_id) const;
  // Constant time in the token's bytes.
  bool Accepts(const std::string& name, const std::string& vm_id,
               absl::string_view presented) const;

 private:
  explicit AccessTokens(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// The user of "Basic base64(user:password)" (E2B sends an empty password);
// "" when `header` is absent (nullptr). InvalidArgument for another scheme,
// bad base64, no ':' or a user name that is not a valid Unix name.
[[nodiscard]] absl::StatusOr<std::string> BasicAuthUser(
    const std::string* header);

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_AUTH_H_
