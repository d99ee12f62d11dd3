#ifndef FCVM_ROOTFS_LOCK_RESOLVER_H_
#define FCVM_ROOTFS_LOCK_RESOLVER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rootfs/lock/debian_index.h"

namespace fcvm::rootfs {

// The packages of one or more indexes for one architecture, looked up by
// name and by what they provide.
class PackageUniverse {
 public:
  // Keeps the records of `arch` and of "all"; others are dropped.
  PackageUniverse(std::vector<PackageRecord> records, std::string arch);

  const std::string& arch() const { return arch_; }

  // Real packages called `name`, highest version first.
  const std::vector<const PackageRecord*>& Named(const std::string& name) const;

  // Packages providing `name` (virtual packages), by package name.
  const std::vector<std::pair<const PackageRecord*, const Dependency*>>&
  Providers(const std::string& name) const;

 private:
  std::string arch_;
  std::vector<PackageRecord> records_;
  std::map<std::string, std::vector<const PackageRecord*>> by_name_;
  std::map<std::string,
           std::vector<std::pair<const PackageRecord*, const Dependency*>>>
      providers_;
};

// The dependency closure (Pre-Depends and Depends) of `roots`, sorted by
// name. Roots are package names, optionally "name=version". Each dependency
// group is satisfied by a package already chosen if one fits, else by its
// first alternative that a real package of the right version satisfies
// (highest version), else by the first package (by name) providing it. So
// the result depends only on the inputs, never on index order. Fails naming
// the chain that could not be satisfied.
[[nodiscard]] absl::StatusOr<std::vector<const PackageRecord*>> ResolveClosure(
    const PackageUniverse& universe, const std::vector<std::string>& roots);

}  // namespace fcvm::rootfs

#endif  // FCVM_ROOTFS_LOCK_RESOLVER_H_
