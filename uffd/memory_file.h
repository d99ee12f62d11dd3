#ifndef FCVM_UFFD_MEMORY_FILE_H_
#define FCVM_UFFD_MEMORY_FILE_H_

// A snapshot's memory file, mapped read-only once for every VM served from
// it (shared: one copy in the page cache, whatever the number of clones).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace fcvm::uffd {

class MemoryFile {
 public:
  static absl::StatusOr<MemoryFile> Open(const std::string& path);
  MemoryFile(MemoryFile&& other) noexcept;
  MemoryFile& operator=(MemoryFile&& other) noexcept;
  ~MemoryFile();

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  int64_t mtime_ns() const { return mtime_ns_; }

 private:
  MemoryFile() = default;

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_MEMORY_FILE_H_
