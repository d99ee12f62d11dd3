#ifndef FCVM_BASE_UNIQUE_FD_H_
#define FCVM_BASE_UNIQUE_FD_H_

#include <sys/types.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm {

// Sole owner of a file descriptor: closes it when destroyed or reset.
// Move-only; -1 means "no descriptor".
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // The descriptor, still owned by this object.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership and returns the descriptor.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the current descriptor (ignoring close errors) and owns `fd`.
  void reset(int fd = -1);

  // Closes now and reports close()'s error, which matters after writes
  // (NFS, quota). `what` names the object for the message.
  [[nodiscard]] absl::Status Close(absl::string_view what);

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added; errors name the path.
[[nodiscard]] absl::StatusOr<UniqueFd> OpenFd(const std::string& path,
                                              int flags, mode_t mode = 0);

// A pipe; both ends O_CLOEXEC plus `flags` (e.g. O_NONBLOCK).
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
[[nodiscard]] absl::StatusOr<Pipe> MakePipe(int flags = 0);

// Writes all of `data` to `fd`, retrying short writes and EINTR. `what` names
// the destination for the error message.
[[nodiscard]] absl::Status WriteAll(int fd, absl::string_view data,
                                    absl::string_view what);

// Reads from `fd` until end of file.
[[nodiscard]] absl::StatusOr<std::string> ReadAll(int fd,
                                                  absl::string_view what);

}  // namespace fcvm

#endif  // FCVM_BASE_UNIQUE_FD_H_
