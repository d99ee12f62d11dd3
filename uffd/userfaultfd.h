#ifndef FCVM_UFFD_USERFAULTFD_H_
#define FCVM_UFFD_USERFAULTFD_H_

// The kernel's userfaultfd, as the memory server and its Firecracker-like
// test client use it: create (via /dev/userfaultfd, else the syscall),
// negotiate the API, register a range, resolve faults (UFFDIO_COPY,
// UFFDIO_ZEROPAGE) with the kernel's answers kept distinct: EAGAIN (the
// address space is changing: read the pending events first), EEXIST (the
// page is there already).

#include <linux/userfaultfd.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::uffd {

// A new userfaultfd (O_CLOEXEC | O_NONBLOCK), API negotiated with
// `features` (e.g. UFFD_FEATURE_EVENT_REMOVE); fails, naming the feature
// the kernel lacks, if it cannot have them all.
[[nodiscard]] absl::StatusOr<UniqueFd> CreateUserfaultfd(uint64_t features);

// Registers [address, address + length) in MISSING mode.
[[nodiscard]] absl::Status RegisterMissing(int uffd, void* address,
                                           size_t length);

// How a UFFDIO_COPY / UFFDIO_ZEROPAGE ended.
struct ResolveResult {
  enum Kind {
    kDone,     // All of it.
    kExists,   // EEXIST: a page in the range was there already.
    kAgain,    // EAGAIN: read the pending events, then retry the rest.
    kGone,     // ESRCH/EFAULT-like: the address space is going; drop it.
    kInvalid,  // EINVAL, ENOENT...: the request was wrong.
  };
  Kind kind = kDone;
  // Bytes resolved before it stopped (the whole length for kDone).
  uint64_t bytes = 0;
  int error = 0;  // errno, for messages.
};

// How a UFFDIO_COPY / UFFDIO_ZEROPAGE of `length` bytes ended, from the
// ioctl's return value `rc`, its errno `error` and the bytes it reports
// done (`done`: the kernel's copy/zeropage field, -errno when nothing was).
ResolveResult ResolveResultOf(int rc, int error, int64_t done, uint64_t length);

// Copies `length` bytes from `source` (ours) to `address` (the peer's).
// `wake`: wake the faulting threads (false while prefetching untouched
// pages saves the wakeups).
ResolveResult Copy(int uffd, uint64_t address, const void* source,
                   uint64_t length, bool wake = true);

// Maps zero pages at [address, address + length).
ResolveResult ZeroPages(int uffd, uint64_t address, uint64_t length);

// Wakes threads waiting on [address, address + length) (after an EEXIST
// from a copy that did not wake them).
[[nodiscard]] absl::Status Wake(int uffd, uint64_t address, uint64_t length);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_USERFAULTFD_H_
