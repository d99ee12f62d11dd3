#include "rootfs/lock/apk_index.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

// Suffix order of apk (libapk version.c): _alpha < _beta < _pre < _rc <
// (none) < _cvs < _svn < _git < _hg < _p.
int SuffixRank(absl::string_view suffix) {
  static const char* kOrder[] = {"alpha", "beta", "pre", "rc", "",
                                 "cvs",   "svn",  "git", "hg", "p"};
  for (int i = 0; i < 10; ++i) {
    if (suffix == kOrder[i]) return i;
  }
  return -1;
}

struct ParsedVersion {
  std::vector<std::string> numbers;  // Dot-separated digit groups.
  char letter = 0;
  std::vector<std::pair<int, uint64_t>> suffixes;  // (rank, number)
  uint64_t revision = 0;
};

[[nodiscard]] absl::StatusOr<ParsedVersion> ParseApkVersion(
    absl::string_view text) {
  const std::string original(text);
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid apk version '", original, "'"));
  };
  ParsedVersion v;
  size_t i = 0;
  auto digits = [&]() -> std::string {
    size_t start = i;
    while (i < text.size() && absl::ascii_isdigit(text[i])) ++i;
    return std::string(text.substr(start, i - start));
  };
  std::string first = digits();
  if (first.empty()) return invalid();
  v.numbers.push_back(first);
  while (i < text.size() && text[i] == '.') {
    ++i;
    std::string more = digits();
    if (more.empty()) return invalid();
    v.numbers.push_back(more);
  }
  if (i < text.size() && absl::ascii_islower(text[i])) v.letter = text[i++];
  while (i < text.size() && text[i] == '_') {
    ++i;
    size_t start = i;
    while (i < text.size() && absl::ascii_islower(text[i])) ++i;
    const int rank = SuffixRank(text.substr(start, i - start));
    if (rank < 0 || i == start) return invalid();
    std::string n = digits();
    uint64_t number = 0;
    if (!n.empty() && !absl::SimpleAtoi(n, &number)) return invalid();
    v.suffixes.push_back({rank, number});
  }
  if (i < text.size()) {
    if (text.substr(i, 2) != "-r") return invalid();
    i += 2;
    std::string r = digits();
    if (r.empty() || !absl::SimpleAtoi(r, &v.revision)) return invalid();
  }
  if (i != text.size()) return invalid();
  return v;
}

// Digit groups compare numerically; after the first, one with a leading
// zero compares as a string (apk's fractional rule).
int CompareNumber(const std::string& a, const std::string& b, bool first) {
  if (!first && (a[0] == '0' || b[0] == '0')) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  std::string x = a;
  std::string y = b;
  x.erase(0, std::min(x.find_first_not_of('0'), x.size() - 1));
  y.erase(0, std::min(y.find_first_not_of('0'), y.size() - 1));
  if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace

[[nodiscard]] absl::StatusOr<int> CompareApkVersions(absl::string_view a,
                                                     absl::string_view b) {
  ASSIGN_OR_RETURN(ParsedVersion x, ParseApkVersion(a));
  ASSIGN_OR_RETURN(ParsedVersion y, ParseApkVersion(b));
  const size_t n = std::min(x.numbers.size(), y.numbers.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = CompareNumber(x.numbers[i], y.numbers[i], i == 0)) return c;
  }
  // More digit groups is newer (1.2.1 > 1.2).
  if (x.numbers.size() != y.numbers.size())
    return x.numbers.size() < y.numbers.size() ? -1 : 1;
  if (x.letter != y.letter) return x.letter < y.letter ? -1 : 1;
  const size_t m = std::max(x.suffixes.size(), y.suffixes.size());
  for (size_t i = 0; i < m; ++i) {
    // A missing suffix ranks as the plain release.
    const std::pair<int, uint64_t> none = {SuffixRank(""), 0};
    auto sx = i < x.suffixes.size() ? x.suffixes[i] : none;
    auto sy = i < y.suffixes.size() ? y.suffixes[i] : none;
    if (sx != sy) return sx < sy ? -1 : 1;
  }
  if (x.revision != y.revision) return x.revision < y.revision ? -1 : 1;
  return 0;
}

[[nodiscard]] absl::StatusOr<std::vector<ApkRecord>> ParseApkIndex(
    absl::string_view text, absl::string_view origin) {
  std::vector<ApkRecord> records;
  ApkRecord current;
  int line_number = 0, stanza_line = 1;
  auto finish = [&]() -> absl::Status {
    if (current.name.empty() && current.version.empty())
      return absl::OkStatus();
    if (current.name.empty() || current.version.empty() ||
        current.arch.empty() || current.checksum.empty() || current.size == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": stanza at line ", stanza_line,
                       " lacks one of P:, V:, A:, C:, S:"));
    }
    if (!ParseApkVersion(current.version).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ": stanza at line ", stanza_line, " (", current.name,
          "): invalid version '", current.version, "'"));
    }
    records.push_back(std::move(current));
    current = ApkRecord();
    return absl::OkStatus();
  };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) {
      RETURN_IF_ERROR(finish());
      stanza_line = line_number + 1;
      continue;
    }
    if (line.size() < 2 || line[1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ": line ", line_number, " is not 'X:value': '", line, "'"));
    }
    const absl::string_view value = line.substr(2);
    auto words = [&] {
      return std::vector<std::string>(
          absl::StrSplit(value, ' ', absl::SkipEmpty()));
    };
    switch (line[0]) {
      case 'P':
        current.name = std::string(value);
        break;
      case 'V':
        current.version = std::string(value);
        break;
      case 'A':
        current.arch = std::string(value);
        break;
      case 'C':
        current.checksum = std::string(value);
        break;
      case 'D':
        current.depends = words();
        break;
      case 'p':
        current.provides = words();
        break;
      default:
        break;  // I:, T:, U:, L:, o:, m:, t:, c:, i: ... not needed.
    }
    if (line[0] == 'S' && !absl::SimpleAtoi(value, &current.size)) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": line ", line_number, ": bad size"));
    }
    if (line[0] == 'k' &&
        !absl::SimpleAtoi(value, &current.provider_priority)) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ": line ", line_number, ": bad provider priority"));
    }
  }
  RETURN_IF_ERROR(finish());
  if (records.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": no packages"));
  }
  return records;
}

namespace {

struct Constraint {
  std::string name;
  std::string op;  // "", "=", ">=", "<=", ">", "<", "~"
  std::string version;
  bool conflict = false;
};

Constraint ParseConstraint(absl::string_view dep) {
  Constraint c;
  if (absl::ConsumePrefix(&dep, "!")) c.conflict = true;
  const size_t at = dep.find_first_of("<>=~");
  if (at == absl::string_view::npos) {
    c.name = std::string(dep);
    return c;
  }
  c.name = std::string(dep.substr(0, at));
  size_t v = at;
  while (v < dep.size() &&
         std::string("<>=~").find(dep[v]) != std::string::npos)
    ++v;
  c.op = std::string(dep.substr(at, v - at));
  c.version = std::string(dep.substr(v));
  return c;
}

bool Satisfies(const std::string& version, const Constraint& c) {
  if (c.op.empty()) return true;
  absl::StatusOr<int> cmp = CompareApkVersions(version, c.version);
  if (!cmp.ok()) return false;
  if (c.op == "=") return *cmp == 0;
  if (c.op == ">=") return *cmp >= 0;
  if (c.op == "<=") return *cmp <= 0;
  if (c.op == ">") return *cmp > 0;
  if (c.op == "<") return *cmp < 0;
  if (c.op == "~") {  // Fuzzy: same prefix.
    return version.compare(0, c.version.size(), c.version) == 0;
  }
  return false;
}

// Name of a provides entry ("so:libz.so.1=1.3" -> "so:libz.so.1"), version.
std::pair<std::string, std::string> SplitProvide(const std::string& p) {
  const size_t eq = p.find('=');
  if (eq == std::string::npos) return {p, ""};
  return {p.substr(0, eq), p.substr(eq + 1)};
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::vector<ApkRecord>> ResolveApkClosure(
    const std::vector<ApkRecord>& index,
    const std::vector<std::string>& roots) {
  std::map<std::string, std::vector<const ApkRecord*>> by_name, providers;
  for (const ApkRecord& r : index) {
    by_name[r.name].push_back(&r);
    for (const std::string& p : r.provides) {
      providers[SplitProvide(p).first].push_back(&r);
    }
  }
  std::map<std::string, const ApkRecord*> chosen;  // By package name.
  std::map<std::string, std::string> why;          // Name -> who wanted it.
  std::vector<Constraint> conflicts;
  std::deque<std::pair<std::string, std::string>> queue;  // (dep, wanted by)
  for (const std::string& root : roots) queue.push_back({root, "the image"});
  while (!queue.empty()) {
    auto [dep, wanted_by] = queue.front();
    queue.pop_front();
    Constraint c = ParseConstraint(dep);
    if (c.conflict) {
      conflicts.push_back(c);
      continue;
    }
    // Already satisfied by a chosen package or one of its provides?
    bool satisfied = false;
    auto it = chosen.find(c.name);
    if (it != chosen.end()) {
      if (!Satisfies(it->second->version, c)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "'", dep, "' (wanted by ", wanted_by, ") conflicts with ",
            it->second->name, " ", it->second->version, " (wanted by ",
            why[c.name], ")"));
      }
      satisfied = true;
    }
    for (const auto& [name, record] : chosen) {
      if (satisfied) break;
      for (const std::string& p : record->provides) {
        auto [pname, pversion] = SplitProvide(p);
        if (pname == c.name && (c.op.empty() || Satisfies(pversion, c))) {
          satisfied = true;
          break;
        }
      }
    }
    if (satisfied) continue;
    const ApkRecord* pick = nullptr;
    for (const ApkRecord* r : by_name[c.name]) {
      if (!Satisfies(r->version, c)) continue;
      if (pick == nullptr || *CompareApkVersions(r->version, pick->version) > 0)
        pick = r;
    }
    if (pick == nullptr) {
      for (const ApkRecord* r : providers[c.name]) {
        std::string pversion;
        for (const std::string& p : r->provides) {
          if (SplitProvide(p).first == c.name)
            pversion = SplitProvide(p).second;
        }
        if (!c.op.empty() && !Satisfies(pversion, c)) continue;
        if (pick == nullptr || r->provider_priority > pick->provider_priority ||
            (r->provider_priority == pick->provider_priority &&
             r->name < pick->name)) {
          pick = r;
        }
      }
    }
    if (pick == nullptr) {
      return absl::NotFoundError(absl::StrCat("no package satisfies '", dep,
                                              "' (wanted by ", wanted_by, ")"));
    }
    if (chosen.count(pick->name)) continue;
    chosen[pick->name] = pick;
    why[pick->name] = wanted_by;
    for (const std::string& d : pick->depends) {
      queue.push_back({d, absl::StrCat(pick->name, " <- ", wanted_by)});
    }
  }
  for (const Constraint& c : conflicts) {
    auto it = chosen.find(c.name);
    if (it != chosen.end() && Satisfies(it->second->version, c)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the closure holds ", c.name, " ", it->second->version,
                       ", which another package conflicts with"));
    }
  }
  std::vector<ApkRecord> closure;
  for (const auto& [name, record] : chosen) closure.push_back(*record);
  return closure;
}

}  // namespace fcvm::rootfs
