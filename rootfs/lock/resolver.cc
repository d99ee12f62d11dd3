#include "rootfs/lock/resolver.h"

#include <algorithm>
#include <deque>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fcvm::rootfs {
namespace {

std::string Describe(const Dependency& dep) {
  if (!dep.relation.has_value()) return dep.name;
  static const char* const kRelations[] = {"<<", "<=", "=", ">=", ">>"};
  return absl::StrCat(dep.name, " (",
                      kRelations[static_cast<int>(*dep.relation)], " ",
                      dep.version.ToString(), ")");
}

bool VersionFits(const Dependency& dep, const DebianVersion& version) {
  return !dep.relation.has_value() ||
         Satisfies(version, *dep.relation, dep.version);
}

// Whether `provided` (an entry of Provides) satisfies `dep`: a versioned
// dependency needs a versioned Provides.
bool ProvisionFits(const Dependency& dep, const Dependency& provided) {
  if (!dep.relation.has_value()) return true;
  return provided.relation == VersionRelation::kEqual &&
         Satisfies(provided.version, *dep.relation, dep.version);
}

}  // namespace

PackageUniverse::PackageUniverse(std::vector<PackageRecord> records,
                                 std::string arch)
    : arch_(std::move(arch)) {
  for (PackageRecord& r : records) {
    if (r.architecture == arch_ || r.architecture == "all") {
      records_.push_back(std::move(r));
    }
  }
  for (const PackageRecord& r : records_) {
    by_name_[r.name].push_back(&r);
    for (const Dependency& p : r.provides)
      providers_[p.name].push_back({&r, &p});
  }
  for (auto& [name, list] : by_name_) {
    std::stable_sort(list.begin(), list.end(),
                     [](const PackageRecord* a, const PackageRecord* b) {
                       return CompareDebianVersions(a->version, b->version) > 0;
                     });
  }
  for (auto& [name, list] : providers_) {
    std::stable_sort(
        list.begin(), list.end(), [](const auto& a, const auto& b) {
          if (a.first->name != b.first->name)
            return a.first->name < b.first->name;
          return CompareDebianVersions(a.first->version, b.first->version) > 0;
        });
  }
}

const std::vector<const PackageRecord*>& PackageUniverse::Named(
    const std::string& name) const {
  static const std::vector<const PackageRecord*> kNone;
  auto it = by_name_.find(name);
  return it == by_name_.end() ? kNone : it->second;
}

const std::vector<std::pair<const PackageRecord*, const Dependency*>>&
PackageUniverse::Providers(const std::string& name) const {
  static const std::vector<std::pair<const PackageRecord*, const Dependency*>>
      kNone;
  auto it = providers_.find(name);
  return it == providers_.end() ? kNone : it->second;
}

[[nodiscard]] absl::StatusOr<std::vector<const PackageRecord*>> ResolveClosure(
    const PackageUniverse& universe, const std::vector<std::string>& roots) {
  std::map<std::string, const PackageRecord*> chosen;  // By package name.
  // Why each package is in: the chain of names from a root, for errors.
  std::map<std::string, std::string> reason;
  std::deque<const PackageRecord*> queue;

  auto choose = [&](const PackageRecord* r, const std::string& why) {
    if (chosen.emplace(r->name, r).second) {
      reason[r->name] = why;
      queue.push_back(r);
    }
  };
  // Whether an already chosen package satisfies `dep`.
  auto already = [&](const Dependency& dep) {
    auto it = chosen.find(dep.name);
    if (it != chosen.end() && VersionFits(dep, it->second->version))
      return true;
    for (const auto& [provider, provided] : universe.Providers(dep.name)) {
      auto c = chosen.find(provider->name);
      if (c != chosen.end() && c->second == provider &&
          ProvisionFits(dep, *provided)) {
        return true;
      }
    }
    return false;
  };
  // The package to install for `dep`, or nullptr.
  auto candidate = [&](const Dependency& dep) -> const PackageRecord* {
    for (const PackageRecord* r : universe.Named(dep.name)) {
      if (VersionFits(dep, r->version)) return r;
    }
    for (const auto& [provider, provided] : universe.Providers(dep.name)) {
      if (ProvisionFits(dep, *provided)) return provider;
    }
    return nullptr;
  };

  for (const std::string& root : roots) {
    Dependency dep;
    size_t eq = root.find('=');
    dep.name = root.substr(0, eq);
    if (eq != std::string::npos) {
      absl::StatusOr<DebianVersion> v = ParseDebianVersion(root.substr(eq + 1));
      if (!v.ok()) return v.status();
      dep.relation = VersionRelation::kEqual;
      dep.version = *v;
    }
    const PackageRecord* r = candidate(dep);
    if (r == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "package '", root, "' is not in the index for ", universe.arch()));
    }
    choose(r, r->name);
  }

  while (!queue.empty()) {
    const PackageRecord* r = queue.front();
    queue.pop_front();
    for (const auto* field : {&r->pre_depends, &r->depends}) {
      for (const DependencyGroup& group : *field) {
        if (std::any_of(group.begin(), group.end(), already)) continue;
        const PackageRecord* pick = nullptr;
        for (const Dependency& alt : group) {
          if ((pick = candidate(alt)) != nullptr) break;
        }
        if (pick == nullptr) {
          std::vector<std::string> alts;
          for (const Dependency& alt : group) alts.push_back(Describe(alt));
          return absl::NotFoundError(absl::StrCat(
              reason[r->name], " depends on ", absl::StrJoin(alts, " | "),
              ", which nothing in the index for ", universe.arch(),
              " satisfies"));
        }
        choose(pick, absl::StrCat(reason[r->name], " -> ", pick->name));
      }
    }
  }

  std::vector<const PackageRecord*> out;
  for (const auto& [name, r] : chosen) out.push_back(r);
  return out;
}

}  // namespace fcvm::rootfs
