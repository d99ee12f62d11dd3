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

// The regions of `json`, or a failure naming why not (so a test never
// dereferences an error).
std::vector<MemoryRegion> Parsed(const std::string& json) {
  absl::StatusOr<std::vector<MemoryRegion>> regions =
      ParseHandshake(json, kFile);
  EXPECT_TRUE(regions.ok()) << regions.status() << "\n" << json;
  return regions.ok() ? *regions : std::vector<MemoryRegion>{};
}

TEST(HandshakeTest, EveryFirecrackerVariant) {
  // 1.4 to 1.6: no page size (4096).
  EXPECT_THAT(Parsed(R"([{"base_host_virt_addr":140737488355328,)"
                     R"("size":134217728,"offset":0}])"),
              ElementsAre(MemoryRegion{140737488355328, 134217728, 0, 4096}));
  // 1.7 to 1.11: page_size_kib, in bytes.
  EXPECT_THAT(Parsed(R"([{"base_host_virt_addr":4096,"size":8192,)"
                     R"("offset":4096,"page_size_kib":4096}])"),
              ElementsAre(MemoryRegion{4096, 8192, 4096, 4096}));
  // 1.12+: both, equal; two regions (x86_64 guests above 3 GiB), 2 MiB
  // hugetlbfs pages.
  EXPECT_THAT(
      Parsed(R"([{"base_host_virt_addr":2097152,"size":4194304,"offset":0,)"
             R"("page_size_kib":2097152,"page_size":2097152},)"
             R"({"base_host_virt_addr":16777216,"size":2097152,)"
             R"("offset":4194304,"page_size_kib":2097152,)"
             R"("page_size":2097152}])"),
      ElementsAre(MemoryRegion{2097152, 4194304, 0, 2097152},
                  MemoryRegion{16777216, 2097152, 4194304, 2097152}));
}

TEST(HandshakeTest, SaysWhetherThePeerSendsPageSize) {
  // Only 1.12+ sends page_size, and only 1.12+ keeps its socket open.
  absl::StatusOr<HandshakeBody> old = ParseHandshakeBody(
      R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
      R"("page_size_kib":4096}])",
      kFile);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_FALSE(old->sends_page_size);
  absl::StatusOr<HandshakeBody> current = ParseHandshakeBody(
      R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
      R"("page_size_kib":4096,"page_size":4096}])",
      kFile);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_TRUE(current->sends_page_size);
  EXPECT_TRUE(current->unknown_fields.empty());
}

TEST(HandshakeTest, FieldsOfNewerFirecrackersAreAcceptedAndNamed) {
  // An unreleased Firecracker adds gpa_start and is_guest_memfd; its own
  // example handler ignores fields it does not know, and so do we.
  absl::StatusOr<HandshakeBody> body = ParseHandshakeBody(
      R"([{"base_host_virt_addr":4096,"size":8192,"offset":0,)"
      R"("page_size_kib":4096,"page_size":4096,"gpa_start":0,)"
      R"("is_guest_memfd":false},)"
      R"({"base_host_virt_addr":65536,"size":4096,"offset":8192,)"
      R"("page_size_kib":4096,"page_size":4096,"gpa_start":8192,)"
      R"("is_guest_memfd":false,"future":{"nested":[1,"]",{}]}}])",
      kFile);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(body->regions,
              ElementsAre(MemoryRegion{4096, 8192, 0, 4096},
                          MemoryRegion{65536, 4096, 8192, 4096}));
  EXPECT_THAT(body->unknown_fields,
              ElementsAre("future", "gpa_start", "is_guest_memfd"));
  // Only Firecracker's spelling is a known field: the JSON mapping's
  // camelCase is just another unknown name (page size stays 4096).
  body = ParseHandshakeBody(
      R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
      R"("pageSize":8192}])",
      kFile);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->regions[0].page_size, 4096u);
  EXPECT_THAT(body->unknown_fields, ElementsAre("pageSize"));
  // A peer's odd names are kept printable for the log.
  body = ParseHandshakeBody(
      R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,"a\nb":1}])",
      kFile);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(body->unknown_fields, ElementsAre("a\\nb"));
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
       "handshake is not valid JSON: "},
      {R"([{"base_host_virt_addr" 4096,"size":4096,"offset":0}])",
       "handshake is not valid JSON: "},
      {R"([{"base_host_virt_addr":"lots","size":4096,"offset":0}])",
       "handshake regions"},
      {R"([{"base_host_virt_addr":-4096,"size":4096,"offset":0}])",
       "handshake regions"},
      // Known fields stay strict: what the JSON mapping would also take
      // for an integer is refused.
      {R"([{"base_host_virt_addr":"4096","size":4096,"offset":0}])",
       "region 0: base_host_virt_addr must be a plain non-negative integer, "
       "not \\\"4096\\\""},
      {R"([{"base_host_virt_addr":4096,"size":4096.0,"offset":0}])",
       "region 0: size must be a plain non-negative integer, not 4096.0"},
      {R"([{"base_host_virt_addr":4096,"size":4.096e3,"offset":0}])",
       "size must be a plain non-negative integer, not 4.096e3"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":null}])",
       "offset must be a plain non-negative integer, not null"},
      {absl::StrCat("[", ok_region,
                    R"(,{"base_host_virt_addr":9007199254740993.0,)"
                    R"("size":4096,"offset":0}])"),
       "region 1: base_host_virt_addr must be a plain non-negative integer"},
      {R"([{"base_host_virt_addr":4096,"siz\u0065":4096,"offset":0}])",
       "region 0: the name of field size is written with escapes"},
      {R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
       R"("page_size":true}])",
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

TEST(HandshakeTest, KnowsWhenAHandshakeInPiecesIsComplete) {
  const std::string whole =
      R"( [{"base_host_virt_addr":4096,"size":4096,"offset":0,)"
      R"("x":"]}[{\"]"}])";
  // Every proper prefix is incomplete: brackets inside strings, escaped
  // quotes and all.
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(HandshakeComplete(whole.substr(0, n))) << n;
  }
  EXPECT_TRUE(HandshakeComplete(whole));
  EXPECT_FALSE(HandshakeComplete("   "));
  // Not an array: no point waiting, it is refused as it is.
  EXPECT_TRUE(HandshakeComplete("{"));
  EXPECT_TRUE(HandshakeComplete(" x"));
  // Unbalanced: complete, then refused by the parser.
  EXPECT_TRUE(HandshakeComplete("[}"));
}

}  // namespace
}  // namespace fcvm::uffd
