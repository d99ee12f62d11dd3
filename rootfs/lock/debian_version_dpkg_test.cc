// CompareDebianVersions against dpkg's own ordering (`dpkg --compare-versions`,
// on every Debian machine): the pairs of the ordering table, and pairs of
// real versions, from the lockfiles given as arguments, and variants of them
// that probe '~', binNMU suffixes, epochs, revisions and longer versions.
// Offline: dpkg compares strings, it reads no database and no network.
//   debian_version_dpkg_test LOCKFILE...
#include <iostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/image/definition.h"
#include "rootfs/image/image.pb.h"
#include "rootfs/lock/debian_version.h"
#include "rootfs/lock/debian_version_cases.h"

namespace fcvm::rootfs {
namespace {

std::vector<std::string> g_lockfiles;

// Whether `dpkg --compare-versions a <relation> b` holds.
[[nodiscard]] absl::StatusOr<bool> DpkgHolds(const std::string& dpkg,
                                             const std::string& a,
                                             const char* relation,
                                             const std::string& b) {
  SubprocessOptions options;
  options.argv = {dpkg, "--compare-versions", a, relation, b};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> child = Subprocess::Start(options);
  if (!child.ok()) return child.status();
  absl::StatusOr<Subprocess::Output> out =
      child->Communicate("", absl::Seconds(30));
  if (!out.ok()) return out.status();
  // 0: holds, 1: does not; anything else (or a word on stderr, which dpkg
  // writes for a version it finds malformed) is an error.
  if (!out->exit.signaled && out->exit.code <= 1 && out->stderr_data.empty()) {
    return out->exit.code == 0;
  }
  return absl::InternalError(
      absl::StrCat("dpkg --compare-versions '", a, "' ", relation, " '", b,
                   "' ", out->exit.ToString(), ": ", out->stderr_data));
}

// dpkg's verdict on (a, b): -1, 0 or 1.
[[nodiscard]] absl::StatusOr<int> DpkgOrder(const std::string& dpkg,
                                            const std::string& a,
                                            const std::string& b) {
  absl::StatusOr<bool> less = DpkgHolds(dpkg, a, "lt", b);
  if (!less.ok()) return less.status();
  if (*less) return -1;
  absl::StatusOr<bool> equal = DpkgHolds(dpkg, a, "eq", b);
  if (!equal.ok()) return equal.status();
  return *equal ? 0 : 1;
}

// Every distinct version in the lockfiles, in the order first seen.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> LockedVersions() {
  std::vector<std::string> versions;
  std::set<std::string> seen;
  for (const std::string& path : g_lockfiles) {
    absl::StatusOr<std::string> json = ReadFile(path);
    if (!json.ok()) return json.status();
    absl::StatusOr<Lockfile> lock = LockfileFromJson(*json);
    if (!lock.ok()) return lock.status();
    for (const LockedPackage& p : lock->packages()) {
      if (seen.insert(p.version()).second) versions.push_back(p.version());
    }
  }
  return versions;
}

// Pairs built from real versions: neighbours in first-seen order (mixed
// packages, so unrelated versions), and each version against variants of
// itself.
std::vector<std::pair<std::string, std::string>> PairsFrom(
    const std::vector<std::string>& versions) {
  std::vector<std::pair<std::string, std::string>> pairs;
  const size_t n = versions.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& v = versions[i];
    pairs.emplace_back(v, versions[(i + 1) % n]);
    pairs.emplace_back(v, versions[(i + 7) % n]);
    pairs.emplace_back(v, v + "~");    // A pre-release of it.
    pairs.emplace_back(v, v + "+b1");  // A binNMU of it.
    pairs.emplace_back(v, v + ".0");   // A longer version.
    pairs.emplace_back(v + "~rc1", v + "~rc1~1");
    if (!absl::StrContains(v, ':')) {
      pairs.emplace_back(v, "1:" + v);  // An epoch wins over all else.
      pairs.emplace_back(v, "0:" + v);  // Epoch 0 is no epoch.
    }
    if (!absl::StrContains(v, '-')) {
      pairs.emplace_back(v, v + "-0");  // An empty revision is "0".
      pairs.emplace_back(v, v + "-1");
    }
  }
  return pairs;
}

TEST(DebianVersionDpkgTest, SameOrderAsDpkg) {
  absl::StatusOr<std::string> dpkg = FindProgram("dpkg");
  if (!dpkg.ok()) {
    GTEST_SKIP() << "dpkg is not installed (" << dpkg.status()
                 << "): its ordering is the reference here";
  }
  ASSERT_FALSE(g_lockfiles.empty()) << "no lockfiles given";
  absl::StatusOr<std::vector<std::string>> versions = LockedVersions();
  ASSERT_TRUE(versions.ok()) << versions.status();
  // Every image's lock together holds this many distinct versions today; a
  // test reading none would prove nothing.
  ASSERT_GT(versions->size(), 50u);

  std::vector<std::pair<std::string, std::string>> pairs;
  for (const VersionOrderCase& c : kVersionOrderCases) {
    pairs.emplace_back(c.a, c.b);
    // The table's own expectation is dpkg's too.
    absl::StatusOr<int> expected = DpkgOrder(*dpkg, c.a, c.b);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(*expected, c.order)
        << "the table says " << c.a << " vs " << c.b << " is " << c.order
        << " (" << c.why << "), dpkg says " << *expected;
  }
  const size_t from_table = pairs.size();
  for (auto& pair : PairsFrom(*versions)) pairs.push_back(std::move(pair));

  int disagreements = 0;
  for (const auto& [a, b] : pairs) {
    absl::StatusOr<int> reference = DpkgOrder(*dpkg, a, b);
    ASSERT_TRUE(reference.ok()) << reference.status();
    absl::StatusOr<int> ours = OrderOfVersions(a, b);
    ASSERT_TRUE(ours.ok()) << ours.status();
    if (*ours != *reference) {
      ++disagreements;
      ADD_FAILURE() << "'" << a << "' vs '" << b << "': dpkg " << *reference
                    << ", ours " << *ours;
    }
  }
  EXPECT_EQ(disagreements, 0);
  std::cerr << pairs.size() << " pairs compared with dpkg (" << from_table
            << " from the table, the rest from " << versions->size()
            << " locked versions in " << g_lockfiles.size() << " lockfiles)\n";
}

}  // namespace
}  // namespace fcvm::rootfs

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  for (int i = 1; i < argc; ++i) fcvm::rootfs::g_lockfiles.push_back(argv[i]);
  return RUN_ALL_TESTS();
}
