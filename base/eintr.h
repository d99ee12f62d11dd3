#ifndef FCVM_BASE_EINTR_H_
#define FCVM_BASE_EINTR_H_

#include <cerrno>
#include <utility>

namespace fcvm {

// Calls `fn` until it fails with something other than EINTR: the one place
// fcvm retries interrupted system calls. `fn` returns -1 and sets errno on
// failure, like the call it wraps:
//   ssize_t n = RetryEintr([&] { return read(fd, buf, size); });
// Never wrap close(): Linux releases the descriptor even when it says EINTR.
template <typename Fn>
auto RetryEintr(Fn&& fn) -> decltype(fn()) {
  decltype(fn()) result;
  do {
    result = std::forward<Fn>(fn)();
  } while (result == -1 && errno == EINTR);
  return result;
}

}  // namespace fcvm

#endif  // FCVM_BASE_EINTR_H_
