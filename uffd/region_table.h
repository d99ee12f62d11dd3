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
  [[nodiscard]] static absl::StatusOr<RegionTable> Create(
      std::vector<MemoryRegion> regions);

  // The region holding `address`, or nullptr (binary search).
  const MemoryRegion* Find(uint64_t address) const;

  // A region holding file offset `offset`, or nullptr (binary search; of
  // regions mapping the same part of the file, the one starting latest in
  // the file).
  const MemoryRegion* FindByFileOffset(uint64_t offset) const;

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
  // Indices into regions_, by file offset.
  std::vector<size_t> by_offset_;
  uint64_t total_bytes_ = 0;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_REGION_TABLE_H_
