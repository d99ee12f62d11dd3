#ifndef FCVM_UFFD_TESTING_FAKE_FIRECRACKER_H_
#define FCVM_UFFD_TESTING_FAKE_FIRECRACKER_H_

// The memory side of a Firecracker snapshot restore with a UFFD backend,
// for tests and benchmarks: anonymous MAP_PRIVATE | MAP_NORESERVE guest
// memory split into regions that map consecutive parts of the memory
// file, a userfaultfd with EVENT_REMOVE, each region registered MISSING,
// and the handshake (JSON in a Firecracker version's fields + the fd).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::uffd::testing {

class FakeFirecracker {
 public:
  // `regions` regions of `region_bytes` each; `page_size` 2 MiB maps
  // hugetlbfs pages (MAP_HUGETLB), as Firecracker's huge_pages "2M" does.
  [[nodiscard]] static absl::StatusOr<FakeFirecracker> Create(
      int regions, uint64_t region_bytes, uint64_t page_size = 4096);
  FakeFirecracker(FakeFirecracker&& other) noexcept;
  FakeFirecracker& operator=(FakeFirecracker&&) = delete;
  ~FakeFirecracker();

  uint8_t* memory() const { return memory_; }
  uint64_t bytes() const { return bytes_; }
  int uffd() const { return uffd_.get(); }
  // Gives up the uffd (to a server in the same process, whose closing it
  // must then release the faulting threads).
  UniqueFd TakeUffd() { return std::move(uffd_); }

  // One region's JSON object in `variant`'s fields ("1.4": none of the
  // page-size fields, "1.10": page_size_kib, "1.12": both); `extra` is
  // appended inside the object.
  static std::string RegionJson(uint64_t base, uint64_t size, uint64_t offset,
                                const std::string& variant,
                                const std::string& extra = "",
                                uint64_t page_size = 4096);
  // The handshake body for this memory.
  std::string Handshake(const std::string& variant) const;

  // Connects to the memory server at `socket_path` and sends `body` with
  // `fds` (default: this uffd). Returns the connected socket.
  [[nodiscard]] absl::StatusOr<UniqueFd> Connect(
      const std::string& socket_path) const;
  [[nodiscard]] static absl::Status Send(int socket, const std::string& body,
                                         const std::vector<int>& fds);

 private:
  FakeFirecracker() = default;

  int regions_ = 0;
  uint64_t page_size_ = 4096;
  uint64_t region_bytes_ = 0;
  uint8_t* memory_ = nullptr;
  uint64_t bytes_ = 0;
  UniqueFd uffd_;
};

}  // namespace fcvm::uffd::testing

#endif  // FCVM_UFFD_TESTING_FAKE_FIRECRACKER_H_
