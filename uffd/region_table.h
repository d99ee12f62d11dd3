#ifndef FCVM_UFFD_REGION_TABLE_H_
#define FCVM_UFFD_REGION_TABLE_H_

// A VM's guest memory regions, ordered by address, for the fault path:
// which region (and so which offset of the memory file) an address is in.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "uffd/handshake.h"

namespace fcvm::uffd {

class RegionTable {
 public:
  // Sorts `regions` by address; refuses overlapping ones, naming both.
  static absl::StatusOr<RegionTable> Create(std::vector<MemoryRegion> regions);

  // The region holding `address`, or nullptr (binary search).
  const MemoryRegion* Find(uint64_t address) const;

  // Where `address` (inside `region`) is in the memory file.
  static uint64_t FileOffset(const MemoryRegion& region, uint64_t address) {
    return region.offset + (address - region.base);
  }

  const std::vector<MemoryRegion>& regions() const { return regions_; }
  // The sum of the regions' sizes.
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  explicit RegionTable(std::vector<MemoryRegion> regions);

  std::vector<MemoryRegion> regions_;
  uint64_t total_bytes_ = 0;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_REGION_TABLE_H_
