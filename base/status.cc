#include "base/status.h"

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace fcvm {

[[nodiscard]] absl::Status ErrnoStatus(int error_number,
                                       absl::string_view context) {
  // Abseil maps errno to a canonical code and appends strerror().
  return absl::ErrnoToStatus(error_number, context);
}

[[nodiscard]] absl::Status ErrnoStatus(absl::string_view context) {
  return ErrnoStatus(errno, context);
}

[[nodiscard]] absl::Status Annotate(const absl::Status& status,
                                    absl::string_view context) {
  if (status.ok() || context.empty()) return status;
  [[nodiscard]] absl::Status annotated(
      status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&annotated](absl::string_view type_url, const absl::Cord& payload) {
        annotated.SetPayload(type_url, payload);
      });
  return annotated;
}

}  // namespace fcvm
