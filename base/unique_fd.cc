#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/status.h"

namespace fcvm {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    // Not retried on EINTR: Linux has released the descriptor either way.
    ::close(fd_);
  }
  fd_ = fd;
}

[[nodiscard]] absl::Status UniqueFd::Close(absl::string_view what) {
  if (fd_ < 0) return absl::OkStatus();
  int fd = release();
  if (::close(fd) != 0 && errno != EINTR) {
    return ErrnoStatus(absl::StrCat("close ", what));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<UniqueFd> OpenFd(const std::string& path,
                                              int flags, mode_t mode) {
  int fd =
      RetryEintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path));
  return UniqueFd(fd);
}

[[nodiscard]] absl::StatusOr<Pipe> MakePipe(int flags) {
  int fds[2];
  if (::pipe2(fds, flags | O_CLOEXEC) != 0) return ErrnoStatus("pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

[[nodiscard]] absl::Status WriteAll(int fd, absl::string_view data,
                                    absl::string_view what) {
  while (!data.empty()) {
    ssize_t n =
        RetryEintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) return ErrnoStatus(absl::StrCat("write ", what));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::string> ReadAll(int fd,
                                                  absl::string_view what) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = RetryEintr([&] { return ::read(fd, buf, sizeof(buf)); });
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", what));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace fcvm
