#ifndef FCVM_RUNNER_VM_LOG_FILE_H_
#define FCVM_RUNNER_VM_LOG_FILE_H_

// A log with a cap: once `path` would pass `max_bytes`, it becomes
// `path`.1 (replacing the older one) and a new `path` starts. So a VM's
// log takes at most 2 x max_bytes, however chatty (or hostile) its guest:
// the state root is tmpfs (/run), that is, RAM.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace fcvm::runner {

class RotatingLog {
 public:
  // Opens (appends to) `path`, creating it 0600.
  [[nodiscard]] static absl::StatusOr<RotatingLog> Open(std::string path,
                                                        uint64_t max_bytes);

  RotatingLog(RotatingLog&&) = default;
  RotatingLog& operator=(RotatingLog&&) = default;

  // Appends `data`, rotating first if it would not fit. A chunk larger
  // than max_bytes keeps only its last max_bytes.
  [[nodiscard]] absl::Status Write(absl::string_view data);

  const std::string& path() const { return path_; }
  int rotations() const { return rotations_; }

 private:
  RotatingLog(std::string path, uint64_t max_bytes, UniqueFd fd, uint64_t size)
      : path_(std::move(path)),
        max_bytes_(max_bytes),
        fd_(std::move(fd)),
        size_(size) {}
  [[nodiscard]] absl::Status Rotate();

  std::string path_;
  uint64_t max_bytes_;
  UniqueFd fd_;
  uint64_t size_;
  int rotations_ = 0;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_LOG_FILE_H_
