#include "base/file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm {
namespace {

// The directory part of `path` ("." when there is none).
std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path,
                                               absl::string_view contents,
                                               mode_t mode,
                                               Durability durability) {
  const bool sync = durability == Durability::kSynced;
  const std::string context = absl::StrCat("writing ", path);
  // The temporary file shares the directory, hence the filesystem, so that
  // rename() is atomic.
  const std::string temp_pattern = absl::StrCat(path, ".tmp.XXXXXX");
  std::string temp_path = temp_pattern;
  UniqueFd fd(::mkostemp(temp_path.data(), O_CLOEXEC));
  if (!fd.valid()) {
    return Annotate(ErrnoStatus(absl::StrCat("create ", temp_pattern)),
                    context);
  }
  bool renamed = false;
  absl::Cleanup remove_temp = [&] {
    if (!renamed) ::unlink(temp_path.c_str());
  };

  RETURN_IF_ERROR(Annotate(WriteAll(fd.get(), contents, temp_path), context));
  // mkostemp creates 0600; set the requested mode exactly (no umask).
  if (::fchmod(fd.get(), mode) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("chmod ", temp_path)), context);
  }
  if (sync && ::fsync(fd.get()) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("fsync ", temp_path)), context);
  }
  RETURN_IF_ERROR(Annotate(fd.Close(temp_path), context));
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    return Annotate(
        ErrnoStatus(absl::StrCat("rename ", temp_path, " to ", path)), context);
  }
  renamed = true;
  if (!sync) return absl::OkStatus();

  // Make the rename itself durable.
  const std::string dir = DirName(path);
  ASSIGN_OR_RETURN(UniqueFd dir_fd,
                   Annotate(OpenFd(dir, O_RDONLY | O_DIRECTORY), context));
  if (::fsync(dir_fd.get()) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("fsync ", dir)), context);
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
  return ReadAll(fd.get(), path);
}

[[nodiscard]] absl::Status RemoveTree(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("removing ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace fcvm
