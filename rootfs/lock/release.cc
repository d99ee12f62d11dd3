#include "rootfs/lock/release.h"

#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status.h"
#include "base/subprocess.h"

namespace fcvm::rootfs {

[[nodiscard]] absl::StatusOr<Release> ParseRelease(absl::string_view text) {
  Release release;
  bool in_sha256 = false;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripSuffix(line, "\r");
    if (line.empty()) continue;
    if (line[0] == ' ') {
      if (!in_sha256) continue;  // Lines of MD5Sum and other fields.
      std::vector<absl::string_view> words =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      Release::Entry entry;
      if (words.size() != 3 || words[0].size() != 64 ||
          !absl::SimpleAtoi(words[1], &entry.size)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Release:", line_number, ": malformed SHA256 line '", line, "'"));
      }
      entry.sha256 = std::string(words[0]);
      release.sha256[std::string(words[2])] = entry;
      continue;
    }
    in_sha256 = false;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view field = line.substr(0, colon);
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (field == "SHA256") {
      in_sha256 = true;
    } else if (field == "Suite") {
      release.suite = std::string(value);
    } else if (field == "Codename") {
      release.codename = std::string(value);
    } else if (field == "Architectures") {
      release.architectures = absl::StrSplit(value, ' ', absl::SkipEmpty());
    } else if (field == "Components") {
      release.components = absl::StrSplit(value, ' ', absl::SkipEmpty());
    }
  }
  if (release.sha256.empty()) {
    return absl::InvalidArgumentError("Release file has no SHA256 entries");
  }
  return release;
}

[[nodiscard]] absl::StatusOr<std::string> VerifyInRelease(
    const std::string& path, const std::vector<std::string>& keyrings,
    const std::string& scratch_dir) {
  const std::string out =
      absl::StrCat(scratch_dir, "/InRelease.verified.", ::getpid());
  std::vector<std::string> argv = {"gpgv", "--quiet"};
  for (const std::string& k : keyrings) {
    argv.insert(argv.end(), {"--keyring", k});
  }
  argv.insert(argv.end(), {"--output", out, path});
  ::unlink(out.c_str());
  absl::StatusOr<Subprocess::Output> result =
      RunCommand({.argv = argv}, absl::Seconds(60));
  if (!result.ok()) {
    ::unlink(out.c_str());
    return Annotate(result.status(),
                    absl::StrCat("signature check of ", path, " failed"));
  }
  absl::StatusOr<std::string> text = ReadFile(out);
  ::unlink(out.c_str());
  return text;
}

}  // namespace fcvm::rootfs
