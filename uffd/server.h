#ifndef FCVM_UFFD_SERVER_H_
#define FCVM_UFFD_SERVER_H_

// The memory server: one process per snapshot maps the memory file once
// and serves the page faults of every VM restored from it. It listens on a
// Unix socket (mode 0600) for Firecracker's handshake: one message, the
// JSON array of regions (uffd/handshake.h) with the uffd as SCM_RIGHTS.
// Each accepted VM goes to the least busy of `threads` fault loops
// (uffd/fault_loop.h). A peer that sends anything else (no fd, several
// fds, something that is not a userfaultfd, bad JSON, regions the file
// does not hold or that overlap, nothing within the handshake timeout) is
// refused with one log line naming its pid and the reason; the VMs already
// being served never notice.
//
// The first VM's faults during `record_window` become the working set
// (uffd/working_set.h), kept beside the memory file; VMs that connect
// while a working set exists get it prefetched in batches of
// `batch_bytes`.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "uffd/fault_loop.h"
#include "uffd/memory_file.h"
#include "uffd/working_set.h"

namespace fcvm::uffd {

struct ServerOptions {
  std::string memory_file;
  std::string socket_path;
  int threads = 2;
  // Zero: never record.
  absl::Duration record_window = absl::Seconds(10);
  bool prefetch = true;
  uint64_t batch_bytes = 2 << 20;
  // Leave Run() once the last VM has gone (after at least one came).
  bool exit_when_idle = false;
  absl::Duration handshake_timeout = absl::Seconds(5);
  // Empty: WorkingSetPath(memory_file).
  std::string working_set_path;
  // Read by Run(): SIGUSR1 prints every VM's stats, SIGINT/SIGTERM stop.
  // -1: none (tests call Stop()).
  int signal_fd = -1;
  // Where log lines go; empty: stderr, as "fcvm-uffd: LINE".
  std::function<void(const std::string&)> log;
};

class Server {
 public:
  // Maps the file, loads its working set if any, listens.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();

  // Serves until Stop(), a stop signal, or idleness (exit_when_idle).
  absl::Status Run();
  void Stop();  // Any thread.

  // Every VM's stats, one line each (any thread).
  std::vector<std::string> Describe() const;
  size_t vm_count() const;
  // Pages in the working set loaded at start (0: none).
  size_t working_set_pages() const;

 private:
  explicit Server(ServerOptions options, MemoryFile memory);
  struct Pending;
  void Accept();
  void Handshake(Pending& pending);
  void Leave(const ServedVm& vm, const std::string& why);
  void Log(const std::string& line) const;

  const ServerOptions options_;
  MemoryFile memory_;
  std::optional<WorkingSet> working_set_;
  std::vector<uint64_t> working_set_offsets_;
  std::unique_ptr<WorkingSetRecorder> recorder_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd control_;  // eventfd: Stop(), a VM left.
  std::vector<std::unique_ptr<FaultLoop>> loops_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Pending>> pending_;
  std::atomic<uint64_t> next_id_{1};
  uint64_t next_tag_ = 16;  // epoll tags of pending handshakes.
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> served_{0};
};

// One fault thread per CPU, at most 4: the default of both entry points.
int DefaultThreads();

// What //uffd:server and `fcvm serve` do: SIGUSR1, SIGINT, SIGTERM and
// SIGHUP blocked and read through a signalfd (options.signal_fd), then
// Create and Run until a stop signal or idleness.
absl::Status ServeUntilSignalled(ServerOptions options);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_SERVER_H_
