#ifndef FCVM_UFFD_SERVER_H_
#define FCVM_UFFD_SERVER_H_

// The memory server: one process per snapshot maps the memory file once
// and serves the page faults of every VM restored from it. It listens on a
// Unix socket (mode 0600; a live server's socket is never taken over) for
// Firecracker's handshake: the JSON array of regions (uffd/handshake.h),
// read until complete, with the uffd as SCM_RIGHTS on its first part.
// Each accepted VM goes to the least busy of `threads` fault loops
// (uffd/fault_loop.h) that are alive. A peer that sends anything else (no
// fd, several fds, something that is not a userfaultfd, bad JSON, regions
// the file does not hold or that overlap, nothing or too little within the
// handshake timeout) is refused with one log line naming its pid and the
// reason; the VMs already being served never notice. Fields the server
// does not know are accepted and logged once per name.
//
// A VM leaves when its process exits (a pidfd: SO_PEERPIDFD, or
// pidfd_open of its SO_PEERCRED pid) or, for Firecracker 1.12+ (which
// keeps the socket open until it exits), when it hangs up, whichever comes
// first.
//
// The memory file is checked (fstat: size, mtime, ctime; stat of the
// path: inode) at every handshake and every `file_check_interval`. Changed
// in place: faults are no longer served (the VMs wait instead of getting
// wrong bytes) and new VMs are refused; replaced or removed: new VMs are
// refused, those being served keep the bytes they were restored from.
//
// The first VM's faults during `record_window` become the working set
// (uffd/working_set.h); the window ends on a timer or when that VM leaves,
// and the file beside the memory file is written on a thread of its own.
// VMs that connect while a working set exists get it prefetched in spans
// of at most `batch_bytes`.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "uffd/fault_loop.h"
#include "uffd/kernel_calls.h"
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
  // Asked at every check of the memory file while no VM is being served
  // and no handshake is pending: true leaves Run() (an owner that knows
  // whether VMs are still to come: runner/snapshot/memory_server.h).
  std::function<bool()> exit_when_unused;
  // Called once by Run() before it serves: the socket listens.
  std::function<void()> listening;
  absl::Duration handshake_timeout = absl::Seconds(5);
  // Connections whose handshake is still being read, at most; more are
  // closed at once (one log line while it lasts).
  int max_pending_handshakes = 256;
  // How often the memory file is checked for changes (also at every
  // handshake).
  absl::Duration file_check_interval = absl::Seconds(1);
  // Empty: WorkingSetPath(memory_file).
  std::string working_set_path;
  // Read by Run(): SIGUSR1 prints every VM's stats, SIGINT/SIGTERM stop.
  // -1: none (tests call Stop()).
  int signal_fd = -1;
  // Where log lines go (from any thread); empty: stderr, as
  // "fcvm-uffd: LINE".
  std::function<void(const std::string&)> log;
  // The fault loops' kernel calls, for tests that make them fail; null:
  // the real kernel.
  const KernelCalls* kernel = nullptr;
};

class Server {
 public:
  // Maps the file, loads its working set if any, listens, starts the
  // fault loops.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Create(
      ServerOptions options);
  ~Server();

  // Serves until Stop(), a stop signal, or idleness (exit_when_idle). An
  // error: every fault loop has died, so no VM can be served.
  [[nodiscard]] absl::Status Run();
  void Stop();  // Any thread.

  // Every VM's stats, one line each (any thread).
  std::vector<std::string> Describe() const;
  size_t vm_count() const;
  // Pages in the working set being prefetched (0: none) (any thread).
  size_t working_set_pages() const { return plan_pages_.load(); }

 private:
  explicit Server(ServerOptions options, MemoryFile memory);
  struct Pending;
  void Accept();
  // Reads what has come of `pending`'s handshake; returns whether it is
  // done with (accepted or refused).
  bool ReadHandshake(Pending& pending);
  // Judges a handshake read to its end (or its connection's).
  void Handshake(Pending& pending);
  void Refuse(const Pending& pending, const std::string& why);
  void PauseListener(int error);
  void ResumeListener();
  // The memory file, checked: "" if it is as it was, else why new VMs are
  // refused (and, changed in place, every loop frozen).
  std::string CheckMemoryFile();
  void MemoryFileChanged(const std::string& what);
  void MaybeCloseRecording(absl::Time now);
  void Leave(const ServedVm& vm, const std::string& why);
  void LoopDied(size_t index, const absl::Status& status);
  void Log(const std::string& line) const;
  void WakeUp();

  const ServerOptions options_;
  MemoryFile memory_;
  std::shared_ptr<const PrefetchPlan> plan_;  // The server's thread only.
  std::atomic<size_t> plan_pages_{0};
  std::unique_ptr<WorkingSetRecorder> recorder_;
  std::atomic<bool> recorded_vm_left_{false};
  std::thread writer_;  // Writes the recorded working set.
  UniqueFd listener_;
  SocketFileId socket_id_;
  UniqueFd epoll_;
  UniqueFd control_;  // eventfd: Stop(), a VM left, a loop died.
  std::vector<std::unique_ptr<FaultLoop>> loops_;
  std::vector<std::thread> threads_;

  // The server's thread only. Pending handshakes by tag, which grows with
  // accept order: their deadlines too, so begin() is the nearest.
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;
  uint64_t next_tag_ = 16;
  std::string read_buffer_;
  std::atomic<uint64_t> next_id_{1};
  bool at_pending_cap_ = false;
  uint64_t refused_at_cap_ = 0;
  // Out of descriptors: the listener is not watched until then.
  absl::Time listener_paused_until_ = absl::InfinitePast();
  bool accept_failing_ = false;  // Since the last successful accept.
  int accept_pauses_ = 0;
  std::set<std::string> unknown_fields_seen_;
  absl::Time next_file_check_;

  mutable std::mutex mu_;       // Guards what loops' threads report.
  std::string refuse_new_vms_;  // Non-empty: why (the memory file).
  bool frozen_ = false;
  std::vector<std::string> dead_loops_;

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> served_{0};
};

// One fault thread per CPU, at most 4: the default of both entry points.
int DefaultThreads();

// What //uffd:server and `fcvm serve` do: SIGUSR1, SIGINT, SIGTERM and
// SIGHUP blocked and read through a signalfd (options.signal_fd), then
// Create and Run until a stop signal or idleness.
[[nodiscard]] absl::Status ServeUntilSignalled(ServerOptions options);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_SERVER_H_
