#include "runner/api/auth.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::runner::api {
namespace {

constexpr size_t kMinKeyLength = 16;

// What useradd(8) accepts by default: [a-z_][a-z0-9_-]*[$]?, at most 32.
bool IsUnixUserName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' ||
                    (i > 0 && ((c >= '0' && c <= '9') || c == '-' ||
                               (c == '$' && i + 1 == name.size())));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | (static_cast<unsigned char>(a[i]) ^
                   static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

absl::StatusOr<ApiKeys> ApiKeys::FromList(const std::vector<std::string>& keys,
                                          absl::string_view source) {
  ApiKeys out;
  for (const std::string& key : keys) {
    out.digests_.push_back(Sha256Hex(key));
  }
  if (out.digests_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no API keys (one per line)"));
  }
  return out;
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("API keys file ", path));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "API keys file ", path, " may be read or written by others (mode ",
        absl::StrFormat("%04o", st.st_mode & 07777), "); chmod 600 it"));
  }
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  std::vector<std::string> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    for (char c : line) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
          !absl::ascii_isprint(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_number,
                         ": a key is one word of printable characters"));
      }
    }
    if (line.size() < kMinKeyLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": a key of ", line.size(),
          " characters is too short (at least ", kMinKeyLength, ")"));
    }
    keys.emplace_back(line);
  }
  return FromList(keys, absl::StrCat("API keys file ", path));
}

bool ApiKeys::Accepts(absl::string_view presented) const {
  const std::string digest = Sha256Hex(presented);
  bool found = false;
  for (const std::string& stored : digests_) {
    found |= ConstantTimeEquals(digest, stored);
  }
  return found;
}

absl::StatusOr<std::string> MintAccessToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "getrandom for an access token");
    }
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

absl::StatusOr<AccessTokens> AccessTokens::Open(const std::string& path) {
  const std::string dir = path.substr(0, path.rfind('/'));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", dir));
  }
  if (access(path.c_str(), F_OK) != 0) {
    // Written aside, then linked into place: a second `fcvm api` starting
    // at the same moment either wins or reads the winner's whole key.
    ASSIGN_OR_RETURN(const std::string key, MintAccessToken());
    const std::string aside = absl::StrCat(path, ".", getpid());
    {
      UniqueFd fd(
          open(aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.valid()) return absl::ErrnoToStatus(errno, aside);
      RETURN_IF_ERROR(WriteAll(fd.get(), key, aside));
    }
    const int linked = link(aside.c_str(), path.c_str());
    const int link_errno = errno;
    unlink(aside.c_str());
    if (linked != 0 && link_errno != EEXIST) {
      return absl::ErrnoToStatus(link_errno, absl::StrCat("link ", path));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, path);
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: mode %04o lets others read the key sandboxes' access tokens "
        "come from: chmod 600 it",
        path, st.st_mode & 07777));
  }
  ASSIGN_OR_RETURN(std::string key, ReadFile(path));
  key = std::string(absl::StripAsciiWhitespace(key));
  if (key.size() < 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": too short for a key (delete it to make a new "
                     "one; running sandboxes' tokens change)"));
  }
  return AccessTokens(std::move(key));
}

std::string AccessTokens::For(const std::string& name,
                              const std::string& vm_id) const {
  const std::string message = absl::StrCat(name, "\n", vm_id);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(mac), length));
}

bool AccessTokens::Accepts(const std::string& name, const std::string& vm_id,
                           absl::string_view presented) const {
  return ConstantTimeEquals(For(name, vm_id), presented);
}

absl::StatusOr<std::string> BasicAuthUser(const std::string* header) {
  if (header == nullptr) return std::string();
  absl::string_view value = absl::StripAsciiWhitespace(*header);
  if (!absl::ConsumePrefix(&value, "Basic ") &&
      !absl::ConsumePrefix(&value, "basic ")) {
    return absl::InvalidArgumentError(
        "Authorization: only the Basic scheme (base64 of \"user:\") names a "
        "user here");
  }
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(value), &decoded)) {
    return absl::InvalidArgumentError("Authorization: Basic: not base64");
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        "Authorization: Basic: expected \"user:password\" (E2B sends an "
        "empty password)");
  }
  const std::string user = decoded.substr(0, colon);
  if (!IsUnixUserName(user)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Authorization: Basic: \"", absl::CHexEscape(user),
                     "\" is not a Unix user name"));
  }
  return user;
}

}  // namespace fcvm::runner::api
