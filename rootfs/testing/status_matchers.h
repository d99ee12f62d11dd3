#ifndef FCVM_ROOTFS_TESTING_STATUS_MATCHERS_H_
#define FCVM_ROOTFS_TESTING_STATUS_MATCHERS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace fcvm::rootfs::testing {

inline const absl::Status& StatusOf(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Matches an OK absl::Status or absl::StatusOr; a failure prints the status.
MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& status = StatusOf(arg);
  if (status.ok()) return true;
  *result_listener << "status is " << status;
  return false;
}

// Matches an OK absl::StatusOr<T> whose value matches `value_matcher`, so a
// test checks a result without dereferencing an error (a crash, not a
// failure). A failure prints the status, or explains the value.
MATCHER_P(IsOkAndHolds, value_matcher,
          negation ? "is not OK or holds a value that does not match"
                   : "is OK and holds a value that matches") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_STATUS_MATCHERS_H_
