#ifndef FCVM_RUNNER_STATE_LEASE_H_
#define FCVM_RUNNER_STATE_LEASE_H_

// A VM's liveness lease: an exclusive flock on <vm dir>/lease, taken when
// the VM's name is claimed and held by the VM's one owner (the process that
// supervises it) until that owner ends. The lock belongs to the open file,
// so it passes to a child across fork (the detached supervisor) and is
// released by the kernel when the last holder exits, however it exits.
// Everyone else (`ls`, `stop`, `rm`, `gc`) asks the lock, never a pid: if
// TryTake gets it, the owner is gone and the taker is the owner now.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::runner {

inline constexpr char kLeaseFile[] = "lease";

class Lease {
 public:
  // Creates `dir`/lease and locks it, for a directory nobody else can see
  // yet (StateStore::Create claims names this way: `named` is where that
  // directory will be once published; default `dir`). Fails if it exists.
  [[nodiscard]] static absl::StatusOr<Lease> Create(const std::string& dir,
                                                    std::string named = "");

  // The lease of the VM in `dir` if its owner is gone (and so now ours);
  // nullopt while the owner lives. NotFound when there is no lease file (no
  // such VM, or one made before leases).
  [[nodiscard]] static absl::StatusOr<std::optional<Lease>> TryTake(
      const std::string& dir);

  // Waits until the owner is gone, then takes the lease; DeadlineExceeded
  // when it still lives after `timeout_ms` (checked every 10 ms: flock has
  // no timed wait).
  [[nodiscard]] static absl::StatusOr<Lease> Take(const std::string& dir,
                                                  int timeout_ms);

  // Whether the owner of the VM in `dir` lives (someone holds its lease).
  // False without a lease file.
  static bool Held(const std::string& dir);

  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = default;

  // The locked descriptor (close-on-exec: a VMM started by the owner never
  // holds it, so a VMM outliving its supervisor does not pass for one).
  int fd() const { return fd_.get(); }
  const std::string& dir() const { return dir_; }

 private:
  Lease(UniqueFd fd, std::string dir)
      : fd_(std::move(fd)), dir_(std::move(dir)) {}

  UniqueFd fd_;
  std::string dir_;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STATE_LEASE_H_
