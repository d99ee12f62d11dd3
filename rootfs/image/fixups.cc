#include "rootfs/image/fixups.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fcvm::rootfs {
namespace {

// The names in a colon-separated master file, checking the field count.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> Names(
    absl::string_view text, size_t fields, absl::string_view what) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ':');
    if (parts.size() != fields || parts[0].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " line ", line_number, ": expected ", fields,
                       " colon-separated fields: '", line, "'"));
    }
    if (!seen.insert(std::string(parts[0])).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " line ", line_number, ": '", parts[0], "' twice"));
    }
    names.emplace_back(parts[0]);
  }
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  return names;
}

std::string WithNewline(absl::string_view text) {
  std::string out(text);
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

// Each line with its second field replaced by "x".
std::string ShadowedLines(absl::string_view master) {
  std::string out;
  for (absl::string_view line :
       absl::StrSplit(master, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ':');
    fields[1] = "x";
    absl::StrAppend(&out, absl::StrJoin(fields, ":"), "\n");
  }
  return out;
}

}  // namespace

[[nodiscard]] absl::StatusOr<PasswdFiles> MakePasswdFiles(
    absl::string_view passwd_master, absl::string_view group_master,
    int64_t epoch) {
  absl::StatusOr<std::vector<std::string>> users =
      Names(passwd_master, 7, "passwd.master");
  if (!users.ok()) return users.status();
  absl::StatusOr<std::vector<std::string>> groups =
      Names(group_master, 4, "group.master");
  if (!groups.ok()) return groups.status();
  PasswdFiles files;
  // As `shadowconfig on` (passwd's postinst) leaves them: "x" in passwd and
  // group, the (locked) passwords in shadow and gshadow.
  files.passwd = ShadowedLines(passwd_master);
  files.group = ShadowedLines(group_master);
  const int64_t day = epoch / 86400;
  for (const std::string& user : *users) {
    // Locked ('*'), as base-passwd leaves system accounts.
    absl::StrAppend(&files.shadow, user, ":*:", day, ":0:99999:7:::\n");
  }
  for (const std::string& group : *groups) {
    absl::StrAppend(&files.gshadow, group, ":*::\n");
  }
  return files;
}

[[nodiscard]] absl::StatusOr<CaCertificates> MakeCaCertificates(
    const std::map<std::string, std::string>& certs) {
  if (certs.empty()) {
    return absl::FailedPreconditionError(
        "no certificates under /usr/share/ca-certificates");
  }
  CaCertificates out;
  out.conf =
      "# Written by fcvm's image tool (every certificate enabled, as the "
      "ca-certificates package's default).\n";
  std::map<unsigned long, int> hash_counts;
  std::set<std::string> pem_names;
  // Sorted by path, like update-ca-certificates.
  for (const auto& [path, pem] : certs) {
    if (!absl::EndsWith(path, ".crt") || absl::StrContains(path, "..")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate path '", path, "' is not <dir>/<name>.crt"));
    }
    absl::StrAppend(&out.conf, path, "\n");
    absl::StrAppend(&out.bundle, WithNewline(pem));
    std::string base(path.substr(path.rfind('/') + 1));
    base = absl::StrCat(absl::StripSuffix(base, ".crt"), ".pem");
    if (!pem_names.insert(base).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two certificates named ", base));
    }
    out.links.emplace_back(base,
                           absl::StrCat("/usr/share/ca-certificates/", path));
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x509 = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (x509 == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate ", path, " is not a PEM X.509 certificate"));
    }
    const unsigned long hash = X509_subject_name_hash(x509);
    X509_free(x509);
    const int n = hash_counts[hash]++;
    out.links.emplace_back(absl::StrFormat("%08lx.%d", hash, n), base);
  }
  return out;
}

std::string MakeDpkgStatus(const std::vector<std::string>& controls) {
  std::string status;
  for (const std::string& control : controls) {
    bool status_written = false;
    for (absl::string_view line :
         absl::StrSplit(absl::StripTrailingAsciiWhitespace(control), '\n')) {
      absl::StrAppend(&status, line, "\n");
      // dpkg puts Status right after Package.
      if (!status_written && absl::StartsWith(line, "Package:")) {
        absl::StrAppend(&status, "Status: install ok installed\n");
        status_written = true;
      }
    }
    absl::StrAppend(&status, "\n");
  }
  return status;
}

}  // namespace fcvm::rootfs
