#ifndef FCVM_UFFD_HANDSHAKE_H_
#define FCVM_UFFD_HANDSHAKE_H_

// The body of Firecracker's UFFD handshake, parsed and checked against the
// memory file it will be served from. Everything a confused or hostile
// peer could send is refused here, with the reason, before any page is
// copied: not JSON, not an array, unknown fields, wrong types, a page size
// Linux does not have, the two page-size fields disagreeing, misaligned or
// empty regions, a region past the end of the file, address overflow, too
// many regions, a message too large.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::uffd {

// Bounds on what a peer may send.
inline constexpr size_t kMaxHandshakeBytes = 64 * 1024;
inline constexpr size_t kMaxRegions = 256;

struct MemoryRegion {
  uint64_t base = 0;       // Address in the peer's address space.
  uint64_t size = 0;       // Bytes, a multiple of page_size.
  uint64_t offset = 0;     // Offset in the memory file.
  uint64_t page_size = 0;  // 4 KiB, 16 KiB, 64 KiB or 2 MiB (hugetlbfs).

  uint64_t end() const { return base + size; }
  bool operator==(const MemoryRegion& o) const {
    return base == o.base && size == o.size && offset == o.offset &&
           page_size == o.page_size;
  }
};

// Parses `json` (Firecracker 1.4 to 1.16 field variants) and checks each
// region against a memory file of `file_size` bytes. Errors are
// kInvalidArgument and say which region and field is wrong.
absl::StatusOr<std::vector<MemoryRegion>> ParseHandshake(absl::string_view json,
                                                         uint64_t file_size);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_HANDSHAKE_H_
