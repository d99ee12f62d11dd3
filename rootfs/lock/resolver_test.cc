#include "rootfs/lock/resolver.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

using ::testing::ElementsAre;

// A stanza with a fake hash; enough for resolving.
std::string Stanza(const std::string& name, const std::string& version,
                   const std::string& arch, const std::string& extra = "") {
  return absl::StrCat("Package: ", name, "\nVersion: ", version,
                      "\nArchitecture: ", arch, "\n", extra, "Filename: pool/",
                      name, "_", version, ".deb\nSize: 1\n",
                      "SHA256: ", std::string(64, 'a'), "\n\n");
}

std::vector<std::string> Names(
    const absl::StatusOr<std::vector<const PackageRecord*>>& closure) {
  std::vector<std::string> out;
  if (!closure.ok()) return {closure.status().ToString()};
  for (const PackageRecord* r : *closure) {
    out.push_back(absl::StrCat(r->name, "=", r->version_text));
  }
  return out;
}

PackageUniverse Universe(const std::string& index, const std::string& arch) {
  absl::StatusOr<std::vector<PackageRecord>> records =
      ParsePackagesIndex(index, "test");
  EXPECT_TRUE(records.ok()) << records.status();
  return PackageUniverse(*std::move(records), arch);
}

TEST(ResolverTest, ClosureWithAlternativesVirtualsAndArchAll) {
  std::string index =
      Stanza("podman", "4.3", "amd64",
             "Pre-Depends: init-system-helpers\n"
             "Depends: crun | runc, libc6 (>= 2.34), mail-transport-agent\n") +
      Stanza("init-system-helpers", "1.65", "all", "Depends: perl-base\n") +
      Stanza("perl-base", "5.36", "amd64") +
      Stanza("crun", "1.8", "amd64", "Depends: libc6\n") +
      Stanza("runc", "1.1", "amd64") + Stanza("libc6", "2.36-9", "amd64") +
      Stanza("libc6", "2.36-9", "arm64") +
      Stanza("postfix", "3.7", "amd64", "Provides: mail-transport-agent\n") +
      Stanza("exim4", "4.96", "amd64", "Provides: mail-transport-agent\n");
  PackageUniverse universe = Universe(index, "amd64");
  EXPECT_THAT(Names(ResolveClosure(universe, {"podman"})),
              ElementsAre("crun=1.8", "exim4=4.96", "init-system-helpers=1.65",
                          "libc6=2.36-9", "perl-base=5.36", "podman=4.3"));
}

TEST(ResolverTest, PicksHighestFittingVersion) {
  std::string index = Stanza("a", "1.0", "amd64", "Depends: b (<< 2.0)\n") +
                      Stanza("b", "1.5", "amd64") +
                      Stanza("b", "2.1", "amd64") + Stanza("b", "1.9", "amd64");
  EXPECT_THAT(Names(ResolveClosure(Universe(index, "amd64"), {"a"})),
              ElementsAre("a=1.0", "b=1.9"));
}

TEST(ResolverTest, AlreadyChosenSatisfiesLaterAlternative) {
  // 'runc' is pulled in directly, so "crun | runc" needs no crun.
  std::string index =
      Stanza("a", "1", "amd64", "Depends: runc, crun | runc\n") +
      Stanza("crun", "1", "amd64") + Stanza("runc", "1", "amd64");
  EXPECT_THAT(Names(ResolveClosure(Universe(index, "amd64"), {"a"})),
              ElementsAre("a=1", "runc=1"));
}

TEST(ResolverTest, IndependentOfIndexOrder) {
  std::string one = Stanza("a", "1", "amd64", "Depends: v\n") +
                    Stanza("zz", "1", "amd64", "Provides: v\n") +
                    Stanza("mm", "1", "amd64", "Provides: v\n");
  std::string two = Stanza("mm", "1", "amd64", "Provides: v\n") +
                    Stanza("a", "1", "amd64", "Depends: v\n") +
                    Stanza("zz", "1", "amd64", "Provides: v\n");
  EXPECT_EQ(Names(ResolveClosure(Universe(one, "amd64"), {"a"})),
            Names(ResolveClosure(Universe(two, "amd64"), {"a"})));
  EXPECT_THAT(Names(ResolveClosure(Universe(one, "amd64"), {"a"})),
              ElementsAre("a=1", "mm=1"));
}

TEST(ResolverTest, VersionedDependencyNeedsVersionedProvides) {
  std::string index = Stanza("a", "1", "amd64", "Depends: v (>= 2)\n") +
                      Stanza("p", "1", "amd64", "Provides: v\n") +
                      Stanza("q", "1", "amd64", "Provides: v (= 3)\n");
  EXPECT_THAT(Names(ResolveClosure(Universe(index, "amd64"), {"a"})),
              ElementsAre("a=1", "q=1"));
}

TEST(ResolverTest, PinnedRoot) {
  std::string index = Stanza("b", "1.5", "amd64") + Stanza("b", "2.1", "amd64");
  EXPECT_THAT(Names(ResolveClosure(Universe(index, "amd64"), {"b=1.5"})),
              ElementsAre("b=1.5"));
}

TEST(ResolverTest, UnsatisfiableNamesTheChain) {
  std::string index = Stanza("a", "1", "amd64", "Depends: b\n") +
                      Stanza("b", "1", "amd64", "Depends: c (>= 2) | d\n") +
                      Stanza("c", "1", "amd64") + Stanza("d", "1", "arm64");
  absl::StatusOr<std::vector<const PackageRecord*>> closure =
      ResolveClosure(Universe(index, "amd64"), {"a"});
  EXPECT_EQ(closure.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(closure.status().message(),
            "a -> b depends on c (>= 2) | d, which nothing in the index for "
            "amd64 satisfies");
}

TEST(ResolverTest, MissingRoot) {
  EXPECT_EQ(ResolveClosure(Universe(Stanza("a", "1", "amd64"), "arm64"), {"a"})
                .status()
                .message(),
            "package 'a' is not in the index for arm64");
}

}  // namespace
}  // namespace fcvm::rootfs
