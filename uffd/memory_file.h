#ifndef FCVM_UFFD_MEMORY_FILE_H_
#define FCVM_UFFD_MEMORY_FILE_H_

// A snapshot's memory file, mapped read-only once for every VM served from
// it (shared: one copy in the page cache, whatever the number of clones).
// The mapping shows whatever the file holds now, so the file must not
// change while it is served: Check() says whether it has.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::uffd {

// What Check() found.
struct FileChange {
  // The mapped file itself changed (size, mtime, or ctime with the same
  // link count): its bytes can no longer be trusted.
  bool in_place = false;
  // The path no longer names the mapped file (removed, or another file
  // renamed over it): the mapped bytes are intact, but a VM restored from
  // the new file would be served the old one's.
  bool replaced = false;
  // What changed, for the log: "size 33554432 -> 0, mtime ... -> ...".
  std::string what;

  bool any() const { return in_place || replaced; }
};

class MemoryFile {
 public:
  [[nodiscard]] static absl::StatusOr<MemoryFile> Open(const std::string& path);
  MemoryFile(MemoryFile&& other) noexcept;
  MemoryFile& operator=(MemoryFile&& other) noexcept;
  ~MemoryFile();

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  int64_t mtime_ns() const { return mtime_ns_; }

  // Compares the open file (fstat) and the path (stat) with what they were
  // at Open (any thread). Errors: the file could not be looked at.
  [[nodiscard]] absl::StatusOr<FileChange> Check() const;

 private:
  MemoryFile() = default;

  std::string path_;
  UniqueFd fd_;  // Kept open: fstat sees the mapped file, not the path.
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
  int64_t ctime_ns_ = 0;
  nlink_t links_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_MEMORY_FILE_H_
