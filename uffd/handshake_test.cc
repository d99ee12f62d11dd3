#include "uffd/handshake.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kFile = 256 << 20;  // A 256 MiB memory file.

TEST(HandshakeTest, EveryFirecrackerVariant) {
  // 1.4 to 1.6: no page size (4096).
  EXPECT_THAT(*ParseHandshake(R"([{"base_host_virt_addr":140737488355328,)"
                              R"("size":134217728,"offset":0}])",
                              kFile),
              ElementsAre(MemoryRegion{140737488355328, 134217728, 0, 4096}));
  // 1.7 to 1.11: page_size_kib, in bytes.
  EXPECT_THAT(*ParseHandshake(R"([{"base_host_virt_addr":4096,"size":8192,)"
                              R"("offset":4096,"page_size_kib":4096}])",
                              kFile),
              ElementsAre(MemoryRegion{4096, 8192, 4096, 4096}));
  // 1.12+: both, equal; two regions (x86_64 guests above 3 GiB), 2 MiB
  // hugetlbfs pages.
  EXPECT_THAT(
      *ParseHandshake(
          R"([{"base_host_virt_addr":2097152,"size":4194304,"offset":0,)"
          R"("page_size_kib":2097152,"page_size":2097152},)"
          R"({"base_host_virt_addr":16777216,"size":2097152,)"
          R"("offset":4194304,"page_size_kib":2097152,"page_size":2097152}])",
          kFile),
      ElementsAre(MemoryRegion{2097152, 4194304, 0, 2097152},
                  MemoryRegion{16777216, 2097152, 4194304, 2097152}));
}

TEST(HandshakeTest, AddressesKeepAll64Bits) {
  // Past 2^53, where a double would round.
  const uint64_t base = 0xfffffffffffff000ull - 0x1000;
  absl::StatusOr<std::vector<MemoryRegion>> regions =
      ParseHandshake(absl::StrCat(R"([{"base_host_virt_addr":)", base,
                                  R"(,"size":4096,"offset":0}])"),
                     kFile);
  ASSERT_TRUE(regions.ok()) << regions.status();
  EXPECT_EQ((*regions)[0].base, base);
}

// Each bad handshake, and what the refusal must say.
struct Bad {
  std::string json;
  std::string says;
};

TEST(HandshakeTest, RefusesWhatDoesNotFit) {
  const std::string ok_region =
      R"({"base_host_virt_addr":4096,"size":4096,"offset":0})";
  const std::vector<Bad> bad = {
      {"", "empty handshake"},
      {"{", "not a JSON array"},
      {R"({"base_host_virt_addr":4096,"size":4096,"offset":0})",
       "not a JSON array of regions: it starts with '{'"},
      {"   ", "it starts with ''"},
      {"[]", "no regions"},
      {R"([1])", "handshake regions"},
      // Found by the fuzzer: the JSON mapping drops nulls.
      {R"([null])", "1 of the 1 elements are not region objects"},
      {absl::StrCat("[", ok_region, ",null]"),
       "1 of the 2 elements are not region objects"},
      {absl::StrCat("[", ok_region, "], [", ok_region, "]"),
       "not a JSON array"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,"x":1}])",
       "handshake regions"},
      {R"([{"base_host_virt_addr":"lots","size":4096,"offset":0}])",
       "handshake regions"},
      {R"([{"base_host_virt_addr":-4096,"size":4096,"offset":0}])",
       "handshake regions"},
      {R"([{"base_host_virt_addr":4096,"size":0,"offset":0}])", "size 0"},
      {R"([{"base_host_virt_addr":4097,"size":4096,"offset":0}])",
       "multiples of the page size 4096"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
       R"("page_size":8192}])",
       "page size 8192 bytes is none of"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
       R"("page_size":4096,"page_size_kib":4}])",
       "page_size 4096 and page_size_kib 4 disagree"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":268435456}])",
       "past the end of the memory file (268435456 bytes)"},
      {R"([{"base_host_virt_addr":4096,"size":18446744073709547520,)"
       R"("offset":0}])",
       "overflows"},
      {R"([{"base_host_virt_addr":4096,"size":536870912,"offset":0}])",
       "past the end"},
      {std::string(kMaxHandshakeBytes + 1, ' '), "at most 65536"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<std::vector<MemoryRegion>> regions =
        ParseHandshake(b.json, kFile);
    ASSERT_FALSE(regions.ok()) << b.json.substr(0, 200);
    EXPECT_TRUE(absl::IsInvalidArgument(regions.status()));
    EXPECT_THAT(regions.status().message(), HasSubstr(b.says))
        << b.json.substr(0, 200);
  }
  std::string many = "[";
  for (size_t i = 0; i <= kMaxRegions; ++i) {
    absl::StrAppend(&many, i ? "," : "", ok_region);
  }
  absl::StrAppend(&many, "]");
  EXPECT_THAT(ParseHandshake(many, kFile).status().message(),
              HasSubstr("257 regions (at most 256)"));
}

}  // namespace
}  // namespace fcvm::uffd
