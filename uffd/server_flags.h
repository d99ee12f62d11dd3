#ifndef FCVM_UFFD_SERVER_FLAGS_H_
#define FCVM_UFFD_SERVER_FLAGS_H_

// The memory server's command line, declared once for both of its entry
// points (//uffd:server and `fcvm serve`) on a CLI11 app, so that both
// take the same flags with the same spellings and `--help` lists them:
//   MEMORY_FILE --socket PATH [--threads N] [--record_window D]
//   [--prefetch | --no-prefetch] [--batch_bytes N] [--exit_when_idle]
//   [--handshake_timeout D] [--max_pending_handshakes N]
//   [--file_check_interval D]
// Values are checked by FinishServerFlags, every error naming the flag and
// the value.

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "uffd/server.h"

namespace fcvm::uffd {

// The values as CLI11 collects them, before checking.
struct ServerFlagValues {
  std::string memory_file;
  std::string socket;
  int threads = 0;  // 0: not given, DefaultThreads(); given: 1 to 1024.
  std::string record_window = "10s";
  bool prefetch = true;
  uint64_t batch_bytes = 2 << 20;
  bool exit_when_idle = false;
  std::string handshake_timeout = "5s";
  int max_pending_handshakes = 256;
  std::string file_check_interval = "1s";
};

// Declares the server's flags and its MEMORY_FILE argument on `app`.
void AddServerFlags(CLI::App& app, ServerFlagValues* values);

// Checks the values: MEMORY_FILE and --socket given, --threads >= 1 (or
// absent: one per CPU, at most 4), durations like 10s or 500ms (absl
// syntax; --record_window may be 0, the others must be positive), counts
// positive.
[[nodiscard]] absl::StatusOr<ServerOptions> FinishServerFlags(
    const ServerFlagValues& values);

// The two above on a throwaway app, for tests and callers without one
// (`args` without the program name). CLI11's parse errors become
// InvalidArgument.
[[nodiscard]] absl::StatusOr<ServerOptions> ParseServerFlags(
    const std::vector<std::string>& args);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_SERVER_FLAGS_H_
