#include "rootfs/lock/debian_version.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fcvm::rootfs {
namespace {

// The weight of one non-digit character in dpkg's order: '~' sorts before
// the end of the part (weight 0), letters before all other characters.
int Order(char c) {
  if (c == '~') return -1;
  if (absl::ascii_isalpha(static_cast<unsigned char>(c))) return c;
  return c + 256;
}

// Compares one upstream or revision part, alternating non-digit runs
// (compared by Order, the end of a run weighing 0) and digit runs (compared
// as numbers, leading zeros ignored).
int ComparePart(absl::string_view a, absl::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    while ((i < a.size() && !absl::ascii_isdigit(a[i])) ||
           (j < b.size() && !absl::ascii_isdigit(b[j]))) {
      int wa = i < a.size() && !absl::ascii_isdigit(a[i]) ? Order(a[i]) : 0;
      int wb = j < b.size() && !absl::ascii_isdigit(b[j]) ? Order(b[j]) : 0;
      if (wa != wb) return wa < wb ? -1 : 1;
      if (i < a.size() && !absl::ascii_isdigit(a[i])) ++i;
      if (j < b.size() && !absl::ascii_isdigit(b[j])) ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    size_t si = i, sj = j;
    while (i < a.size() && absl::ascii_isdigit(a[i])) ++i;
    while (j < b.size() && absl::ascii_isdigit(b[j])) ++j;
    // Without leading zeros, a longer digit run is a larger number.
    if (i - si != j - sj) return (i - si) < (j - sj) ? -1 : 1;
    int c = a.substr(si, i - si).compare(b.substr(sj, j - sj));
    if (c != 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

bool ValidChars(absl::string_view part, absl::string_view extra) {
  for (char c : part) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        extra.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string DebianVersion::ToString() const {
  std::string out = epoch != 0 ? absl::StrCat(epoch, ":") : "";
  absl::StrAppend(&out, upstream);
  if (!revision.empty()) absl::StrAppend(&out, "-", revision);
  return out;
}

[[nodiscard]] absl::StatusOr<DebianVersion> ParseDebianVersion(
    absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid Debian version '", text, "': ", why));
  };
  DebianVersion v;
  absl::string_view rest = text;
  size_t colon = rest.find(':');
  if (colon != absl::string_view::npos) {
    if (!absl::SimpleAtoi(rest.substr(0, colon), &v.epoch) ||
        !ValidChars(rest.substr(0, colon), "")) {
      return invalid("epoch is not a number");
    }
    rest.remove_prefix(colon + 1);
  }
  size_t dash = rest.rfind('-');
  if (dash != absl::string_view::npos) {
    v.revision = std::string(rest.substr(dash + 1));
    rest = rest.substr(0, dash);
    if (v.revision.empty()) return invalid("empty revision");
    if (!ValidChars(v.revision, "+.~"))
      return invalid("bad revision character");
  }
  if (rest.empty()) return invalid("empty upstream version");
  if (!absl::ascii_isdigit(rest[0])) {
    return invalid("upstream version must start with a digit");
  }
  if (!ValidChars(rest, ".+-~:")) return invalid("bad upstream character");
  v.upstream = std::string(rest);
  return v;
}

int CompareDebianVersions(const DebianVersion& a, const DebianVersion& b) {
  if (a.epoch != b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (int c = ComparePart(a.upstream, b.upstream); c != 0) return c;
  return ComparePart(a.revision, b.revision);
}

[[nodiscard]] absl::StatusOr<VersionRelation> ParseVersionRelation(
    absl::string_view text) {
  if (text == "<<") return VersionRelation::kLess;
  if (text == "<=" || text == "<") return VersionRelation::kLessEqual;
  if (text == "=") return VersionRelation::kEqual;
  if (text == ">=" || text == ">") return VersionRelation::kGreaterEqual;
  if (text == ">>") return VersionRelation::kGreater;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown version relation '", text, "'"));
}

bool Satisfies(const DebianVersion& version, VersionRelation relation,
               const DebianVersion& bound) {
  int c = CompareDebianVersions(version, bound);
  switch (relation) {
    case VersionRelation::kLess:
      return c < 0;
    case VersionRelation::kLessEqual:
      return c <= 0;
    case VersionRelation::kEqual:
      return c == 0;
    case VersionRelation::kGreaterEqual:
      return c >= 0;
    case VersionRelation::kGreater:
      return c > 0;
  }
  return false;
}

}  // namespace fcvm::rootfs
