#ifndef FCVM_UFFD_KERNEL_CALLS_H_
#define FCVM_UFFD_KERNEL_CALLS_H_

// The kernel calls of the fault loop whose failures need tests (STYLE rule
// 7): resolving a fault (UFFDIO_COPY, UFFDIO_ZEROPAGE) and waiting for
// events (epoll_wait). The loop makes them through this interface; the
// real kernel by default, a test's subclass to answer EAGAIN, EFAULT,
// EINVAL, a partial copy or a failed epoll_wait on cue.

#include <sys/epoll.h>

#include <cstdint>

#include "uffd/userfaultfd.h"

namespace fcvm::uffd {

class KernelCalls {
 public:
  virtual ~KernelCalls() = default;

  // uffd::Copy and uffd::ZeroPages (uffd/userfaultfd.h).
  virtual ResolveResult Copy(int uffd, uint64_t address, const void* source,
                             uint64_t length, bool wake) const;
  virtual ResolveResult ZeroPages(int uffd, uint64_t address,
                                  uint64_t length) const;
  // epoll_wait(2): the count of events, or -1 with errno set.
  virtual int EpollWait(int epoll, epoll_event* events, int max_events,
                        int timeout_ms) const;

  // The real kernel (one for the process).
  static const KernelCalls& Real();
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_KERNEL_CALLS_H_
