#include "release/manifest.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::release {

std::string ReleaseName(absl::string_view version, absl::string_view arch) {
  return absl::StrCat("fcvm-", version, "-linux-", arch);
}

std::string ManifestJson(const ReleaseManifest& manifest) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  // A message of our own type always prints.
  (void)google::protobuf::util::MessageToJsonString(manifest, &json, options);
  return json;
}

bool IsCleanRelativePath(absl::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  for (const char c : path) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

[[nodiscard]] absl::StatusOr<ReleaseManifest> ParseManifest(
    absl::string_view json, absl::string_view what) {
  ReleaseManifest manifest;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(json.data(), json.size()), &manifest,
          options);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a release manifest (",
                     std::string(parsed.message()), ")"));
  }
  if (manifest.version().empty() || manifest.name().empty() ||
      (manifest.arch() != "x86_64" && manifest.arch() != "aarch64")) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": a release manifest needs version, name and arch (x86_64 or "
        "aarch64)"));
  }
  if (manifest.name() != ReleaseName(manifest.version(), manifest.arch())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": name '", manifest.name(), "' is not ",
                     ReleaseName(manifest.version(), manifest.arch())));
  }
  std::vector<const std::string*> paths = {&manifest.kernel(),
                                           &manifest.rootfs()};
  for (const ImageAssets& image : manifest.images()) {
    paths.push_back(&image.oci());
    if (!image.rootfs().empty()) paths.push_back(&image.rootfs());
  }
  for (const std::string* path : paths) {
    if (!IsCleanRelativePath(*path)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": asset path '",
                                                     *path,
                                                     "' is not a clean "
                                                     "relative path"));
    }
  }
  for (const FileEntry& file : manifest.files()) {
    if (!IsCleanRelativePath(file.path())) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": file path '", file.path(),
                       "' is not a clean relative path"));
    }
  }
  return manifest;
}

std::string SumsText(const Sums& sums) {
  std::string text;
  for (const auto& [path, sha256] : sums) {
    absl::StrAppend(&text, sha256, "  ", path, "\n");
  }
  return text;
}

[[nodiscard]] absl::StatusOr<Sums> ParseSums(absl::string_view text,
                                             absl::string_view what) {
  Sums sums;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (line.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " line ", number, ": ", why));
    };
    if (line.size() < 67 || line.substr(64, 2) != "  ") {
      return bad("expected '<sha256>  <path>'");
    }
    const absl::string_view hex = line.substr(0, 64);
    for (const char c : hex) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
          absl::ascii_isupper(static_cast<unsigned char>(c))) {
        return bad("the digest is not 64 lower-case hex digits");
      }
    }
    const std::string path(line.substr(66));
    if (!IsCleanRelativePath(path)) {
      return bad(absl::StrCat("'", path, "' is not a clean relative path"));
    }
    if (!sums.emplace(path, std::string(hex)).second) {
      return bad(absl::StrCat("'", path, "' listed twice"));
    }
  }
  if (sums.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty"));
  return sums;
}

}  // namespace fcvm::release
