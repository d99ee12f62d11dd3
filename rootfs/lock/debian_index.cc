#include "rootfs/lock/debian_index.h"

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status.h"
#include "re2/re2.h"

namespace fcvm::rootfs {
namespace {

// name[:qualifier] [(relation version)]
const RE2& DependencyPattern() {
  static const RE2* const kPattern =
      new RE2(R"(([a-z0-9][a-z0-9+.\-]*)(?::([a-z0-9\-]+))?)"
              R"(\s*(?:\(\s*(<<|<=|<|=|>=|>>|>)\s*([^\s)]+)\s*\))?)");
  return *kPattern;
}

[[nodiscard]] absl::StatusOr<Dependency> ParseDependency(
    absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::string name, qualifier, relation, version;
  // This RE2 predates its absl::string_view API.
  if (!RE2::FullMatch(re2::StringPiece(text.data(), text.size()),
                      DependencyPattern(), &name, &qualifier, &relation,
                      &version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse dependency '", text, "'"));
  }
  Dependency dep;
  dep.name = std::move(name);
  dep.arch_qualifier = std::move(qualifier);
  if (!relation.empty()) {
    ASSIGN_OR_RETURN(dep.relation, ParseVersionRelation(relation));
    ASSIGN_OR_RETURN(dep.version, ParseDebianVersion(version));
  }
  return dep;
}

// Field name -> value of one stanza (continuation lines joined with '\n').
using Stanza = std::map<std::string, std::string>;

}  // namespace

[[nodiscard]] absl::StatusOr<std::vector<DependencyGroup>> ParseDependencyField(
    absl::string_view field) {
  std::vector<DependencyGroup> groups;
  for (absl::string_view group_text : absl::StrSplit(field, ',')) {
    if (absl::StripAsciiWhitespace(group_text).empty()) continue;
    DependencyGroup group;
    for (absl::string_view alternative : absl::StrSplit(group_text, '|')) {
      ASSIGN_OR_RETURN(Dependency dep, ParseDependency(alternative));
      group.push_back(std::move(dep));
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

[[nodiscard]] absl::StatusOr<std::vector<PackageRecord>> ParsePackagesIndex(
    absl::string_view text, absl::string_view origin) {
  std::vector<PackageRecord> records;
  Stanza stanza;
  std::string last_field;
  int line_number = 0;
  int stanza_line = 0;

  auto finish = [&]() -> absl::Status {
    if (stanza.empty()) return absl::OkStatus();
    const std::string where =
        absl::StrCat(origin, ":", stanza_line, " (package '",
                     stanza.count("Package") ? stanza["Package"] : "?", "')");
    auto get = [&](const char* field) -> absl::StatusOr<std::string> {
      auto it = stanza.find(field);
      if (it == stanza.end() || it->second.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": missing field ", field));
      }
      return it->second;
    };
    PackageRecord r;
    ASSIGN_OR_RETURN(r.name, get("Package"));
    ASSIGN_OR_RETURN(r.version_text, get("Version"));
    ASSIGN_OR_RETURN(r.version,
                     Annotate(ParseDebianVersion(r.version_text), where));
    ASSIGN_OR_RETURN(r.architecture, get("Architecture"));
    ASSIGN_OR_RETURN(r.filename, get("Filename"));
    ASSIGN_OR_RETURN(std::string size, get("Size"));
    if (!absl::SimpleAtoi(size, &r.size)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": bad Size '", size, "'"));
    }
    ASSIGN_OR_RETURN(r.sha256, get("SHA256"));
    if (r.sha256.size() != 64 ||
        r.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": bad SHA256 '", r.sha256, "'"));
    }
    r.multi_arch = stanza["Multi-Arch"];
    r.essential = stanza["Essential"] == "yes";
    r.priority = stanza["Priority"];
    ASSIGN_OR_RETURN(r.pre_depends,
                     Annotate(ParseDependencyField(stanza["Pre-Depends"]),
                              absl::StrCat(where, ": Pre-Depends")));
    ASSIGN_OR_RETURN(r.depends,
                     Annotate(ParseDependencyField(stanza["Depends"]),
                              absl::StrCat(where, ": Depends")));
    ASSIGN_OR_RETURN(std::vector<DependencyGroup> provides,
                     Annotate(ParseDependencyField(stanza["Provides"]),
                              absl::StrCat(where, ": Provides")));
    for (DependencyGroup& group : provides) {
      if (group.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": Provides has alternatives"));
      }
      r.provides.push_back(std::move(group[0]));
    }
    records.push_back(std::move(r));
    stanza.clear();
    return absl::OkStatus();
  };

  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripSuffix(line, "\r");
    if (absl::StripAsciiWhitespace(line).empty()) {
      RETURN_IF_ERROR(finish());
      last_field.clear();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (last_field.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            origin, ":", line_number, ": continuation line without a field"));
      }
      absl::StrAppend(&stanza[last_field], "\n",
                      absl::StripAsciiWhitespace(line));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_number, ": expected 'Field: value', got '",
          line.substr(0, 80), "'"));
    }
    if (stanza.empty()) stanza_line = line_number;
    last_field = std::string(line.substr(0, colon));
    stanza[last_field] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  RETURN_IF_ERROR(finish());
  return records;
}

}  // namespace fcvm::rootfs
