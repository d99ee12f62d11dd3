#ifndef FCVM_BASE_STATUS_H_
#define FCVM_BASE_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm {

// A status for errno value `error_number`, with the canonical code for it
// (ENOENT -> kNotFound, EACCES -> kPermissionDenied, ...) and the message
// "<context>: <strerror>", e.g. "open /run/fcvm/web.sock: No such file or
// directory". `context` should name the operation and the object. (A thin
// layer over absl::ErrnoToStatus, so every call site reads the same.)
[[nodiscard]] absl::Status ErrnoStatus(int error_number,
                                       absl::string_view context);

// ErrnoStatus() for the current value of errno; call it right after the
// failing call, before anything else can change errno.
[[nodiscard]] absl::Status ErrnoStatus(absl::string_view context);

// Returns `status` with "<context>: " put before its message (payloads and
// code kept); OK stays OK. For "loading snapshot 'web': open vmstate: ...".
[[nodiscard]] absl::Status Annotate(const absl::Status& status,
                                    absl::string_view context);

template <typename T>
[[nodiscard]] absl::StatusOr<T> Annotate(absl::StatusOr<T> status_or,
                                         absl::string_view context) {
  if (status_or.ok()) return status_or;
  return Annotate(status_or.status(), context);
}

namespace status_internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}

template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace status_internal
}  // namespace fcvm

#define FCVM_STATUS_CONCAT_INNER_(a, b) a##b
#define FCVM_STATUS_CONCAT_(a, b) FCVM_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status or absl::StatusOr<T>) and returns its
// status from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                     \
  do {                                                            \
    const auto& fcvm_status_ = (expr);                            \
    if (!::fcvm::status_internal::GetStatus(fcvm_status_).ok()) { \
      return ::fcvm::status_internal::GetStatus(fcvm_status_);    \
    }                                                             \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from
// the enclosing function, else moves the value into `lhs`, which may be a
// declaration: ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
#define ASSIGN_OR_RETURN(lhs, rexpr)                                         \
  FCVM_ASSIGN_OR_RETURN_IMPL_(FCVM_STATUS_CONCAT_(fcvm_statusor_, __LINE__), \
                              lhs, rexpr)

#define FCVM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)  \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // FCVM_BASE_STATUS_H_
