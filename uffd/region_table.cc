#include "uffd/region_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fcvm::uffd {

RegionTable::RegionTable(std::vector<MemoryRegion> regions)
    : regions_(std::move(regions)) {
  for (const MemoryRegion& r : regions_) total_bytes_ += r.size;
  by_offset_.resize(regions_.size());
  for (size_t i = 0; i < regions_.size(); ++i) by_offset_[i] = i;
  std::sort(by_offset_.begin(), by_offset_.end(), [&](size_t a, size_t b) {
    return regions_[a].offset < regions_[b].offset;
  });
}

[[nodiscard]] absl::StatusOr<RegionTable> RegionTable::Create(
    std::vector<MemoryRegion> regions) {
  std::sort(regions.begin(), regions.end(),
            [](const MemoryRegion& a, const MemoryRegion& b) {
              return a.base < b.base;
            });
  for (size_t i = 1; i < regions.size(); ++i) {
    const MemoryRegion& before = regions[i - 1];
    const MemoryRegion& after = regions[i];
    if (after.base < before.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "regions overlap: [0x", absl::Hex(before.base), ", 0x",
          absl::Hex(before.end()), ") and [0x", absl::Hex(after.base), ", 0x",
          absl::Hex(after.end()), ")"));
    }
  }
  return RegionTable(std::move(regions));
}

const MemoryRegion* RegionTable::Find(uint64_t address) const {
  // The last region starting at or below `address`.
  auto it = std::upper_bound(
      regions_.begin(), regions_.end(), address,
      [](uint64_t a, const MemoryRegion& r) { return a < r.base; });
  if (it == regions_.begin()) return nullptr;
  --it;
  return address < it->end() ? &*it : nullptr;
}

const MemoryRegion* RegionTable::FindByFileOffset(uint64_t offset) const {
  // The last region starting in the file at or below `offset`.
  auto it = std::upper_bound(
      by_offset_.begin(), by_offset_.end(), offset,
      [&](uint64_t o, size_t i) { return o < regions_[i].offset; });
  if (it == by_offset_.begin()) return nullptr;
  const MemoryRegion& region = regions_[*--it];
  return offset - region.offset < region.size ? &region : nullptr;
}

}  // namespace fcvm::uffd
