#include "runner/storage/disk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::runner {
namespace {

[[nodiscard]] absl::Status PwriteAll(int fd, absl::string_view data,
                                     off_t at, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = pwrite(fd, data.data(), data.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(absl::StrCat("writing the copy of ", what));
    data.remove_prefix(n);
    at += n;
  }
  return absl::OkStatus();
}

// Copies the data extents of `from` into `to` (same offsets); holes stay
// holes.
[[nodiscard]] absl::Status CopyDataExtents(int from, int to, off_t size,
                                           const std::string& what) {
  off_t data = 0;
  while (data < size) {
    data = lseek(from, data, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // No data past here.
      return ErrnoStatus(absl::StrCat("SEEK_DATA in ", what));
    }
    off_t hole = lseek(from, data, SEEK_HOLE);
    if (hole < 0) return ErrnoStatus(absl::StrCat("SEEK_HOLE in ", what));
    loff_t in = data, out = data;
    while (in < hole) {
      const ssize_t n = copy_file_range(from, &in, to, &out, hole - in, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP ||
                    errno == ENOSYS || errno == EINVAL)) {
        break;  // Across filesystems the kernel may not: by hand below.
      }
      if (n <= 0) return ErrnoStatus(absl::StrCat("copying ", what));
    }
    std::vector<char> buffer;
    while (in < hole) {
      buffer.resize(1 << 20);
      const ssize_t n = pread(from, buffer.data(),
                              std::min<off_t>(buffer.size(), hole - in), in);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus(absl::StrCat("reading ", what));
      RETURN_IF_ERROR(PwriteAll(to, absl::string_view(buffer.data(), n), in,
                                what));
      in += n;
    }
    data = hole;
  }
  return absl::OkStatus();
}

}  // namespace

[[nodiscard]] absl::StatusOr<DiskReport> CreateWritableDisk(
    const std::string& path, uint64_t size_bytes,
    const std::string& template_path) {
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  bool done = false;
  absl::Cleanup remove = [&] {
    if (!done) unlink(path.c_str());
  };
  DiskReport report{"sparse", absl::ZeroDuration()};
  if (!template_path.empty()) {
    ASSIGN_OR_RETURN(UniqueFd from, OpenFd(template_path, O_RDONLY));
    struct stat st;
    if (fstat(from.get(), &st) != 0) {
      return ErrnoStatus(absl::StrCat("stat ", template_path));
    }
    if (static_cast<uint64_t>(st.st_size) > size_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("disk ", path, ": ", size_bytes,
                       " bytes is smaller than its template ", template_path,
                       " (", st.st_size, " bytes)"));
    }
    if (ioctl(fd.get(), FICLONE, from.get()) == 0) {
      report.method = "reflink";
    } else if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL ||
               errno == ENOTTY) {
      report.method = "sparse copy";
      RETURN_IF_ERROR(
          CopyDataExtents(from.get(), fd.get(), st.st_size, template_path));
    } else {
      return ErrnoStatus(absl::StrCat("reflink ", template_path, " to ", path));
    }
  }
  if (ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0) {
    return ErrnoStatus(absl::StrCat("sizing ", path));
  }
  RETURN_IF_ERROR(fd.Close(path));
  done = true;
  report.took = absl::FromChrono(std::chrono::steady_clock::now() - start);
  return report;
}

}  // namespace fcvm::runner
