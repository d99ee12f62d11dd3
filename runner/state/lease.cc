#include "runner/state/lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::runner {
namespace {

std::string LeasePath(const std::string& dir) {
  return absl::StrCat(dir, "/", kLeaseFile);
}

// flock(LOCK_EX | LOCK_NB): true if taken, false if someone holds it.
[[nodiscard]] absl::StatusOr<bool> TryLock(int fd, const std::string& path) {
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) return ErrnoStatus(absl::StrCat("flock ", path));
  }
}

}  // namespace

[[nodiscard]] absl::StatusOr<Lease> Lease::Create(const std::string& dir,
                                                  std::string named) {
  const std::string path = LeasePath(dir);
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  ASSIGN_OR_RETURN(bool taken, TryLock(fd.get(), path));
  if (!taken) {
    return absl::AlreadyExistsError(absl::StrCat(path, " is held already"));
  }
  return Lease(std::move(fd), named.empty() ? dir : std::move(named));
}

[[nodiscard]] absl::StatusOr<std::optional<Lease>> Lease::TryTake(
    const std::string& dir) {
  const std::string path = LeasePath(dir);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDWR | O_CLOEXEC));
  ASSIGN_OR_RETURN(bool taken, TryLock(fd.get(), path));
  if (!taken) return std::optional<Lease>();
  return std::optional<Lease>(Lease(std::move(fd), dir));
}

[[nodiscard]] absl::StatusOr<Lease> Lease::Take(const std::string& dir,
                                                int timeout_ms) {
  for (int waited = 0;; waited += 10) {
    ASSIGN_OR_RETURN(std::optional<Lease> lease, TryTake(dir));
    if (lease.has_value()) return std::move(*lease);
    if (waited >= timeout_ms) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the owner of ", dir, " still runs after ", timeout_ms, " ms"));
    }
    usleep(10 * 1000);
  }
}

bool Lease::Held(const std::string& dir) {
  absl::StatusOr<UniqueFd> fd = OpenFd(LeasePath(dir), O_RDONLY | O_CLOEXEC);
  if (!fd.ok()) return false;
  absl::StatusOr<bool> taken = TryLock(fd->get(), LeasePath(dir));
  // Closing `fd` drops the probe's lock at once.
  return taken.ok() && !*taken;
}

}  // namespace fcvm::runner
