// libFuzzer target for the handshake parser: any bytes a peer can send are
// either refused with kInvalidArgument or parsed into regions that pass
// every check the parser promises. Built with clang by run.sh (libFuzzer,
// ASan, UBSan); //uffd/fuzz:corpus_test replays the corpus with the
// project's compiler.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "uffd/handshake.h"
#include "uffd/region_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kFileSize = uint64_t{1} << 30;
  absl::StatusOr<std::vector<fcvm::uffd::MemoryRegion>> regions =
      fcvm::uffd::ParseHandshake(
          absl::string_view(reinterpret_cast<const char*>(data), size),
          kFileSize);
  if (!regions.ok()) {
    if (!absl::IsInvalidArgument(regions.status())) std::abort();
    return 0;
  }
  if (regions->empty() || regions->size() > fcvm::uffd::kMaxRegions) {
    std::abort();
  }
  for (const fcvm::uffd::MemoryRegion& r : *regions) {
    const uint64_t page = r.page_size;
    if (page == 0 || (page & (page - 1)) != 0 || r.size == 0 ||
        r.size % page != 0 || r.base % page != 0 || r.offset % page != 0 ||
        r.end() < r.base || r.offset + r.size > kFileSize ||
        r.offset + r.size < r.offset) {
      std::abort();
    }
  }
  absl::StatusOr<fcvm::uffd::RegionTable> table =
      fcvm::uffd::RegionTable::Create(*regions);
  if (table.ok()) {
    for (const fcvm::uffd::MemoryRegion& r : table->regions()) {
      if (table->Find(r.base) != &r || table->Find(r.end() - 1) != &r) {
        std::abort();
      }
    }
  }
  return 0;
}
