// libFuzzer target for the handshake parser: any bytes a peer can send are
// either refused with kInvalidArgument or parsed into regions that pass
// every check the parser promises. Built with clang by run.sh (libFuzzer,
// ASan, UBSan); //uffd/fuzz:corpus_test replays the corpus with the
// project's compiler.
#include "uffd/fuzz/handshake_fuzzer.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "uffd/handshake.h"
#include "uffd/region_table.h"

namespace fcvm::uffd {

std::string BrokenHandshakePromise(absl::string_view input) {
  absl::StatusOr<HandshakeBody> body = ParseHandshakeBody(input, kFuzzFileSize);
  if (!body.ok()) {
    return absl::IsInvalidArgument(body.status())
               ? ""
               : absl::StrCat("refused with another code: ",
                              body.status().ToString());
  }
  const std::vector<MemoryRegion>& regions = body->regions;
  if (regions.empty() || regions.size() > kMaxRegions) {
    return absl::StrCat(regions.size(), " regions accepted");
  }
  for (const MemoryRegion& r : regions) {
    const uint64_t page = r.page_size;
    if (page == 0 || (page & (page - 1)) != 0 || r.size == 0 ||
        r.size % page != 0 || r.base % page != 0 || r.offset % page != 0 ||
        r.end() < r.base || r.offset + r.size > kFuzzFileSize ||
        r.offset + r.size < r.offset) {
      return absl::StrCat("region accepted: base ", r.base, " size ", r.size,
                          " offset ", r.offset, " page ", page);
    }
  }
  if (body->unknown_fields.size() > 16) return "too many unknown fields kept";
  for (const std::string& name : body->unknown_fields) {
    for (char c : name) {
      if (c < 0x20 || c > 0x7e) return "an unknown field name not printable";
    }
  }
  absl::StatusOr<RegionTable> table = RegionTable::Create(regions);
  if (table.ok()) {
    for (const MemoryRegion& r : table->regions()) {
      if (table->Find(r.base) != &r || table->Find(r.end() - 1) != &r) {
        return "a region not found again by its addresses";
      }
      if (table->FindByFileOffset(r.offset) == nullptr) {
        return "a region not found again by its file offset";
      }
    }
  }
  return "";
}

}  // namespace fcvm::uffd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!fcvm::uffd::BrokenHandshakePromise(
           absl::string_view(reinterpret_cast<const char*>(data), size))
           .empty()) {
    std::abort();
  }
  return 0;
}
