#ifndef FCVM_UFFD_FUZZ_HANDSHAKE_FUZZER_H_
#define FCVM_UFFD_FUZZ_HANDSHAKE_FUZZER_H_

// The handshake parser's promises, checked on any input: the fuzz target
// (LLVMFuzzerTestOneInput, defined beside this) aborts on a broken one;
// the corpus test reports it.

#include <string>

#include "absl/strings/string_view.h"

namespace fcvm::uffd {

// The size of the memory file the inputs are parsed against.
inline constexpr uint64_t kFuzzFileSize = uint64_t{1} << 30;

// The promise ParseHandshakeBody breaks on `input`, or "" if it keeps
// them all: refused with InvalidArgument, or regions that are non-empty,
// page-aligned, inside the file, without overflow, at most kMaxRegions,
// each found again by its first and last address in a RegionTable, and
// unknown field names that are printable and few.
std::string BrokenHandshakePromise(absl::string_view input);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_FUZZ_HANDSHAKE_FUZZER_H_
