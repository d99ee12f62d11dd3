#include "uffd/kernel_calls.h"

namespace fcvm::uffd {

ResolveResult KernelCalls::Copy(int uffd, uint64_t address, const void* source,
                                uint64_t length, bool wake) const {
  return uffd::Copy(uffd, address, source, length, wake);
}

ResolveResult KernelCalls::ZeroPages(int uffd, uint64_t address,
                                     uint64_t length) const {
  return uffd::ZeroPages(uffd, address, length);
}

int KernelCalls::EpollWait(int epoll, epoll_event* events, int max_events,
                           int timeout_ms) const {
  return epoll_wait(epoll, events, max_events, timeout_ms);
}

const KernelCalls& KernelCalls::Real() {
  static const KernelCalls* const real = new KernelCalls();
  return *real;
}

}  // namespace fcvm::uffd
