#ifndef FCVM_BASE_SHA256_H_
#define FCVM_BASE_SHA256_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm {

// SHA-256 of `data` as 64 lower-case hex digits.
std::string Sha256Hex(absl::string_view data);

// SHA-256 of the file at `path`, read in chunks (archives can be large).
[[nodiscard]] absl::StatusOr<std::string> Sha256File(const std::string& path);

// SHA-256 over data given in pieces (an archive's entry as it streams by).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(Sha256Stream&&) noexcept;
  Sha256Stream& operator=(Sha256Stream&&) noexcept;

  void Update(absl::string_view data);
  // 64 lower-case hex digits; the stream starts over.
  std::string Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fcvm

#endif  // FCVM_BASE_SHA256_H_
