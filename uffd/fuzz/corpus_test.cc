// Replays the committed fuzz corpus with the project's own compiler: every
// input keeps the parser's promises (what the fuzz target aborts on), and
// gets the verdict it is in the corpus for.
#include <dirent.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_join.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "uffd/fuzz/handshake_fuzzer.h"
#include "uffd/handshake.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

// Each input's verdict: accepted with this many regions and these unknown
// fields, or refused saying this.
struct Verdict {
  int regions = 0;   // 0: refused.
  std::string says;  // Refused: part of the reason; accepted: the unknown
                     // field names, joined with ",".
};

const std::map<std::string, Verdict>& Verdicts() {
  static const auto* verdicts = new std::map<std::string, Verdict>{
      {"bare_key_float",
       {0, "region 0: size must be a plain non-negative integer, not 4096.0"}},
      {"float_size", {0, "size must be a plain non-negative integer"}},
      {"newer_fields", {1, "gpa_start,is_guest_memfd"}},
      {"not_objects", {0, "handshake regions"}},
      {"null_element", {0, "1 of the 1 elements are not region objects"}},
      {"object", {0, "it starts with '{'"}},
      {"overflow", {0, "base_host_virt_addr + size overflows"}},
      // Found by the fuzzer: a 'single-quoted' key (which the JSON mapping
      // takes) sent the literal check past the end of the input.
      {"single_quoted_key", {0, "handshake region 0: size 0"}},
      {"string_number",
       {0, "base_host_virt_addr must be a plain non-negative integer"}},
      {"unknown_field", {1, "x"}},
      {"v1_10", {1, ""}},
      {"v1_12_two_hugepages", {2, ""}},
      {"v1_4", {1, ""}},
  };
  return *verdicts;
}

TEST(HandshakeCorpusTest, EveryInputKeepsThePromisesAndGetsItsVerdict) {
  const std::string dir = "uffd/fuzz/corpus";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  std::set<std::string> seen;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string name = e->d_name;
    seen.insert(name);
    absl::StatusOr<std::string> input = fcvm::ReadFile(dir + "/" + name);
    ASSERT_TRUE(input.ok()) << input.status();
    EXPECT_EQ(BrokenHandshakePromise(*input), "") << name;
    auto verdict = Verdicts().find(name);
    if (verdict == Verdicts().end()) {
      ADD_FAILURE() << name << ": a corpus input without a verdict here";
      continue;
    }
    absl::StatusOr<HandshakeBody> body =
        ParseHandshakeBody(*input, kFuzzFileSize);
    if (verdict->second.regions == 0) {
      ASSERT_FALSE(body.ok()) << name;
      EXPECT_THAT(body.status().message(), HasSubstr(verdict->second.says))
          << name;
    } else {
      ASSERT_TRUE(body.ok()) << name << ": " << body.status();
      EXPECT_EQ(body->regions.size(), verdict->second.regions) << name;
      EXPECT_EQ(absl::StrJoin(body->unknown_fields, ","), verdict->second.says)
          << name;
    }
  }
  closedir(d);
  for (const auto& [name, verdict] : Verdicts()) {
    EXPECT_EQ(seen.count(name), 1u) << name << ": not in the corpus";
  }
}

}  // namespace
}  // namespace fcvm::uffd
