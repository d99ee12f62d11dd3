#ifndef FCVM_UFFD_FAULT_LOOP_H_
#define FCVM_UFFD_FAULT_LOOP_H_

// Serving VMs' page faults from the shared memory file: one FaultLoop per
// worker thread, an epoll over the userfaultfds (and exit pidfds) of the
// VMs it was given.
//
// For each VM:
// - PAGEFAULT: UFFDIO_COPY of the page from the memory file; a page in a
//   range the VM removed (REMOVE event: balloon inflation, MADV_DONTNEED)
//   gets a zero page instead, as anonymous memory would.
// - EAGAIN from the kernel (the address space is changing, events are
//   queued): the queued events are read and applied first, then the copy
//   is retried. EEXIST: the page is there already; the faulting threads
//   are woken explicitly (the kernel does not on EEXIST).
// - Prefetch: a planned list of runs (the working set) copied one batch
//   per loop turn without waking anyone, between the faults, which stay
//   first.
// - A VM leaves when its process exits (pidfd), or when its uffd fails in
//   a way that means it is gone or was never usable; one log line says
//   which and what it got.

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "uffd/memory_file.h"
#include "uffd/region_table.h"
#include "uffd/stats.h"
#include "uffd/working_set.h"

namespace fcvm::uffd {

// Ranges of a VM's address space it has removed (half-open, merged).
class RemovedRanges {
 public:
  void Add(uint64_t start, uint64_t end);
  bool Contains(uint64_t address) const;
  // Whether any of [start, end) is removed.
  bool Intersects(uint64_t start, uint64_t end) const;
  // Forgets [start, end): pages there were filled again (zero pages).
  void Remove(uint64_t start, uint64_t end);
  size_t size() const { return ranges_.size(); }

 private:
  std::map<uint64_t, uint64_t> ranges_;  // start -> end.
};

// One VM being served.
struct ServedVm {
  uint64_t id = 0;  // Serial, for logs.
  pid_t pid = 0;    // The peer (SO_PEERCRED); 0 if unknown.
  UniqueFd uffd;
  UniqueFd pidfd;  // Readable when the peer exits; may be invalid.
  RegionTable regions;
  RemovedRanges removed;
  std::vector<PrefetchRun> prefetch;
  size_t prefetch_next = 0;
  uint64_t prefetch_run_done = 0;  // Bytes of prefetch[prefetch_next] done.
  // Recorded pages of the working set (for faults_in_working_set).
  std::vector<uint64_t> working_set;  // Sorted file offsets.
  bool recording = false;             // This VM's faults feed the recorder.
  absl::Time connected;
  VmStats stats;

  explicit ServedVm(RegionTable table) : regions(std::move(table)) {}
};

class FaultLoop {
 public:
  struct Options {
    // Records the first VM's working set (may be null).
    WorkingSetRecorder* recorder = nullptr;
    // Called (on the loop's thread) with each VM that leaves and why.
    std::function<void(const ServedVm&, const std::string& why)> on_leave;
    // Log lines (the working set written).
    std::function<void(const std::string&)> log;
  };

  FaultLoop(const MemoryFile& memory, Options options);
  ~FaultLoop();
  FaultLoop(const FaultLoop&) = delete;
  FaultLoop& operator=(const FaultLoop&) = delete;

  // Hands `vm` to the loop (any thread); served from its next turn.
  void Add(std::unique_ptr<ServedVm> vm);
  // Serves until Stop() (any thread). VMs still there are dropped.
  void Run();
  void Stop();

  // The VMs being served now, each as "vm ID pid PID: STATS" (any thread).
  std::vector<std::string> Describe() const;
  size_t vm_count() const;

 private:
  void Wake();
  void TakeNewVms();
  void Drop(uint64_t id, const std::string& why);
  // Reads and handles the VM's pending messages; faults are resolved as
  // they come. Returns an error message if the VM must go.
  std::string ServeEvents(ServedVm& vm);
  // Reads messages until none are pending: REMOVE applied at once,
  // PAGEFAULT addresses appended to `faults`.
  std::string DrainEvents(ServedVm& vm, std::deque<uint64_t>& faults);
  std::string Resolve(ServedVm& vm, uint64_t address,
                      std::deque<uint64_t>& later);
  std::string PrefetchOneBatch(ServedVm& vm);
  // The recording VM's window is over or it left: write the set.
  void FinishRecording(ServedVm& vm);

  const MemoryFile& memory_;
  const Options options_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: new VMs, Stop().

  // VMs with prefetch batches left (the loop's thread only): the turn
  // does not sleep while there are any.
  std::vector<uint64_t> prefetching_;

  mutable std::mutex mu_;  // Guards inbox_, vms_ (membership), stop_.
  std::vector<std::unique_ptr<ServedVm>> inbox_;
  std::map<uint64_t, std::unique_ptr<ServedVm>> vms_;
  bool stop_ = false;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_FAULT_LOOP_H_
