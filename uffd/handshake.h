#ifndef FCVM_UFFD_HANDSHAKE_H_
#define FCVM_UFFD_HANDSHAKE_H_

// The body of Firecracker's UFFD handshake, parsed and checked against the
// memory file it will be served from. Everything a confused or hostile
// peer could send in the fields this server knows is refused here, with
// the reason, before any page is copied: not JSON, not an array, wrong
// types, integers that are not exact 64-bit ones, a page size Linux does
// not have, the two page-size fields disagreeing, misaligned or empty
// regions, a region past the end of the file, address overflow, too many
// regions, a message too large. Fields it does not know are accepted and
// reported (Firecracker's own serde ignores them; newer versions add
// `gpa_start` and `is_guest_memfd`).

#include <cstdint>
#include <string>
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

// A parsed handshake.
struct HandshakeBody {
  std::vector<MemoryRegion> regions;
  // Field names this server does not know, sorted, each once ("gpa_start").
  std::vector<std::string> unknown_fields;
  // Every region had `page_size`: Firecracker 1.12 or later, which keeps
  // its end of the socket open until it exits (earlier ones close it right
  // after the handshake).
  bool sends_page_size = false;
};

// Parses `json` (Firecracker 1.4 to 1.16 field variants, and later ones
// with fields added) and checks each region against a memory file of
// `file_size` bytes. Errors are kInvalidArgument and say which region and
// field is wrong.
[[nodiscard]] absl::StatusOr<HandshakeBody> ParseHandshakeBody(
    absl::string_view json, uint64_t file_size);

// ParseHandshakeBody's regions alone.
[[nodiscard]] absl::StatusOr<std::vector<MemoryRegion>> ParseHandshake(
    absl::string_view json, uint64_t file_size);

// Whether the bytes of a handshake received so far (a stream socket may
// deliver it in pieces) are worth parsing: the top-level array has closed,
// or they do not start with '[' and so will be refused as they are. False
// while an array is still open, or only whitespace has come.
bool HandshakeComplete(absl::string_view received);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_HANDSHAKE_H_
