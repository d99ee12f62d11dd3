#include "rootfs/lock/mirrors.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"

namespace fcvm::rootfs {
namespace {

// Appends the URIs of one file: deb822 ("URIs: a b") or one-line format
// ("deb [options] uri suite components...").
void CollectUris(absl::string_view text, std::vector<std::string>* uris) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (absl::ConsumePrefix(&line, "URIs:")) {
      for (absl::string_view uri :
           absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
        uris->emplace_back(uri);
      }
      continue;
    }
    std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (words.size() < 3 || words[0] != "deb") continue;
    size_t i = 1;
    if (absl::StartsWith(words[i], "[")) {  // [arch=amd64 signed-by=...]
      while (i < words.size() && !absl::EndsWith(words[i], "]")) ++i;
      ++i;
    }
    if (i < words.size()) uris->emplace_back(words[i]);
  }
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::vector<std::string>> AptSourceUris(
    const AptSourcePaths& paths) {
  std::vector<std::string> files = {paths.sources_list};
  if (DIR* dir = opendir(paths.sources_dir.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = readdir(dir)) {
      absl::string_view name = e->d_name;
      if (absl::EndsWith(name, ".sources") || absl::EndsWith(name, ".list")) {
        names.emplace_back(name);
      }
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      files.push_back(absl::StrCat(paths.sources_dir, "/", n));
    }
  }
  std::vector<std::string> uris;
  for (const std::string& file : files) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) continue;
      return text.status();
    }
    CollectUris(*text, &uris);
  }
  return uris;
}

[[nodiscard]] absl::StatusOr<std::string> FindMirrorRoot(
    absl::string_view mirror, const AptSourcePaths& paths) {
  std::string env = absl::StrCat("FCVM_MIRROR_", mirror);
  for (char& c : env) c = c == '-' ? '_' : absl::ascii_toupper(c);
  if (const char* value = std::getenv(env.c_str()); value && *value) {
    return std::string(absl::StripSuffix(value, "/"));
  }
  absl::StatusOr<std::vector<std::string>> uris = AptSourceUris(paths);
  if (!uris.ok()) return uris.status();
  const std::string suffix = absl::StrCat("/", mirror);
  for (const std::string& uri : *uris) {
    absl::string_view root = absl::StripSuffix(uri, "/");
    if (absl::EndsWith(root, suffix)) return std::string(root);
  }
  return absl::NotFoundError(
      absl::StrCat("no mirror for '", mirror, "': set ", env,
                   " to its root URL, or add an apt source whose path ends in ",
                   suffix, " (apt sources seen: ",
                   uris->empty() ? "none" : absl::StrJoin(*uris, ", "), ")"));
}

}  // namespace fcvm::rootfs
