// //uffd:server: serves a snapshot's memory file to Firecracker VMs over
// userfaultfd (see server.h).
//   server MEMORY_FILE --socket PATH [--threads N] [--record_window 10s]
//          [--prefetch=false] [--batch_bytes N] [--exit_when_idle]
// SIGUSR1 prints every VM's stats; SIGINT/SIGTERM stop it.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "uffd/server.h"

ABSL_FLAG(std::string, socket, "",
          "the Unix socket Firecracker connects to (created mode 0600)");
ABSL_FLAG(int, threads, 0, "fault-serving threads (0: one per CPU, at most 4)");
ABSL_FLAG(absl::Duration, record_window, absl::Seconds(10),
          "how long the first VM's faults are recorded as the working set "
          "(0: never), when the memory file has none yet");
ABSL_FLAG(bool, prefetch, true,
          "prefetch the recorded working set into each VM after its "
          "handshake");
ABSL_FLAG(uint64_t, batch_bytes, 2 << 20, "prefetch batch size in bytes");
ABSL_FLAG(bool, exit_when_idle, false,
          "exit once the last VM has gone (after the first came)");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(5),
          "how long a connection may take to send its handshake");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "serves a snapshot's memory to Firecracker VMs over userfaultfd\n"
      "  server MEMORY_FILE --socket PATH [flags]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2 || absl::GetFlag(FLAGS_socket).empty()) {
    std::fprintf(stderr, "usage: %s MEMORY_FILE --socket PATH [flags]\n",
                 argv[0]);
    return 2;
  }
  fcvm::uffd::ServerOptions options;
  options.memory_file = args[1];
  options.socket_path = absl::GetFlag(FLAGS_socket);
  options.threads = absl::GetFlag(FLAGS_threads) > 0
                        ? absl::GetFlag(FLAGS_threads)
                        : fcvm::uffd::DefaultThreads();
  options.record_window = absl::GetFlag(FLAGS_record_window);
  options.prefetch = absl::GetFlag(FLAGS_prefetch);
  options.batch_bytes = absl::GetFlag(FLAGS_batch_bytes);
  options.exit_when_idle = absl::GetFlag(FLAGS_exit_when_idle);
  options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  if (absl::Status served = fcvm::uffd::ServeUntilSignalled(options);
      !served.ok()) {
    std::fprintf(stderr, "fcvm-uffd: %s\n",
                 std::string(served.message()).c_str());
    return 1;
  }
  return 0;
}
