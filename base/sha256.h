#ifndef FCVM_BASE_SHA256_H_
#define FCVM_BASE_SHA256_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm {

// SHA-256 of `data` as 64 lower-case hex digits.
std::string Sha256Hex(absl::string_view data);

// SHA-256 of the file at `path`, read in chunks (archives can be large).
[[nodiscard]] absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace fcvm

#endif  // FCVM_BASE_SHA256_H_
