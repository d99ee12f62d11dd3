#include "runner/vm/log_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::runner {
namespace {

[[nodiscard]] absl::StatusOr<UniqueFd> OpenForAppend(const std::string& path) {
  return OpenFd(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

}  // namespace

[[nodiscard]] absl::StatusOr<RotatingLog> RotatingLog::Open(
    std::string path, uint64_t max_bytes) {
  if (max_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a log cap of 0"));
  }
  ASSIGN_OR_RETURN(UniqueFd fd, OpenForAppend(path));
  struct stat st;
  if (fstat(fd.get(), &st) != 0)
    return ErrnoStatus(absl::StrCat("stat ", path));
  return RotatingLog(std::move(path), max_bytes, std::move(fd),
                     static_cast<uint64_t>(st.st_size));
}

[[nodiscard]] absl::Status RotatingLog::Rotate() {
  const std::string older = absl::StrCat(path_, ".1");
  if (rename(path_.c_str(), older.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rotating ", path_));
  }
  ASSIGN_OR_RETURN(fd_, OpenForAppend(path_));
  size_ = 0;
  ++rotations_;
  return absl::OkStatus();
}

[[nodiscard]] absl::Status RotatingLog::Write(absl::string_view data) {
  if (data.size() > max_bytes_) data.remove_prefix(data.size() - max_bytes_);
  if (size_ + data.size() > max_bytes_) RETURN_IF_ERROR(Rotate());
  RETURN_IF_ERROR(WriteAll(fd_.get(), data, path_));
  size_ += data.size();
  return absl::OkStatus();
}

}  // namespace fcvm::runner
