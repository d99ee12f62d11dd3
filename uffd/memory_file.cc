#include "uffd/memory_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"

namespace fcvm::uffd {
namespace {

int64_t Nanoseconds(const timespec& t) {
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

}  // namespace

[[nodiscard]] absl::StatusOr<MemoryFile> MemoryFile::Open(
    const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (fstat(fd.get(), &st) != 0)
    return ErrnoStatus(absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty"));
  }
  // Shared and read-only: every VM's pages come from the one page-cache
  // copy, and nothing here can write to the file.
  void* data = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) return ErrnoStatus(absl::StrCat("mmap ", path));
  MemoryFile file;
  file.path_ = path;
  file.fd_ = std::move(fd);
  file.data_ = static_cast<const uint8_t*>(data);
  file.size_ = st.st_size;
  file.mtime_ns_ = Nanoseconds(st.st_mtim);
  file.ctime_ns_ = Nanoseconds(st.st_ctim);
  file.links_ = st.st_nlink;
  file.dev_ = st.st_dev;
  file.ino_ = st.st_ino;
  return file;
}

[[nodiscard]] absl::StatusOr<FileChange> MemoryFile::Check() const {
  FileChange change;
  std::vector<std::string> what;
  struct stat st;
  if (fstat(fd_.get(), &st) != 0) {
    return ErrnoStatus(absl::StrCat("stat the memory file ", path_));
  }
  if (static_cast<uint64_t>(st.st_size) != size_) {
    what.push_back(absl::StrCat("size ", size_, " -> ", st.st_size));
  }
  if (Nanoseconds(st.st_mtim) != mtime_ns_) {
    what.push_back(
        absl::StrCat("mtime ", mtime_ns_, " -> ", Nanoseconds(st.st_mtim)));
  }
  // A link count change (the path removed or renamed over) moves ctime
  // too, without touching the bytes; with the same count, a ctime change
  // means a write whose mtime was put back, or metadata: not trusted.
  if (Nanoseconds(st.st_ctim) != ctime_ns_ && st.st_nlink == links_) {
    what.push_back(
        absl::StrCat("ctime ", ctime_ns_, " -> ", Nanoseconds(st.st_ctim)));
  }
  change.in_place = !what.empty();
  struct stat now;
  if (stat(path_.c_str(), &now) != 0) {
    if (errno != ENOENT) {
      return ErrnoStatus(absl::StrCat("stat the memory file ", path_));
    }
    change.replaced = true;
    what.push_back("the path was removed");
  } else if (now.st_dev != dev_ || now.st_ino != ino_) {
    change.replaced = true;
    what.push_back(absl::StrCat("the path names another file (inode ", ino_,
                                " -> ", now.st_ino, ")"));
  }
  change.what = absl::StrJoin(what, ", ");
  return change;
}

MemoryFile::MemoryFile(MemoryFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::move(other.fd_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mtime_ns_(other.mtime_ns_),
      ctime_ns_(other.ctime_ns_),
      links_(other.links_),
      dev_(other.dev_),
      ino_(other.ino_) {}

MemoryFile& MemoryFile::operator=(MemoryFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mtime_ns_ = other.mtime_ns_;
    ctime_ns_ = other.ctime_ns_;
    links_ = other.links_;
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

MemoryFile::~MemoryFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace fcvm::uffd
