#ifndef FCVM_UFFD_FAULT_LOOP_H_
#define FCVM_UFFD_FAULT_LOOP_H_

// Serving VMs' page faults from the shared memory file: one FaultLoop per
// worker thread, an epoll over the userfaultfds (and exit watches) of the
// VMs it was given.
//
// For each VM:
// - PAGEFAULT: UFFDIO_COPY of the page from the memory file; a page in a
//   range the VM removed (REMOVE event: balloon inflation, MADV_DONTNEED)
//   gets a zero page instead, as anonymous memory would.
// - EAGAIN from the kernel (the address space is changing, events are
//   queued): the queued events are read and applied, and the VM's faults
//   wait for a retry time of its own (10 us, doubling to 1 ms; given up
//   after 10 s without progress) while the loop goes back to epoll and
//   serves the other VMs. EEXIST: the page is there already; the faulting
//   threads are woken explicitly (the kernel does not on EEXIST).
// - Prefetch: the shared plan (uffd/working_set.h) copied one span per
//   loop turn without waking anyone, between the faults, which stay first;
//   an EAGAIN pauses it until the VM's retry time.
// - A VM leaves when its process exits (pidfd), when it closes its end of
//   the handshake socket (Firecracker 1.12+ keeps it open until it exits),
//   whichever comes first, or when its uffd fails in a way that means it
//   is gone or was never usable; one log line says which and what it got.
// - A copy that fails with EFAULT because the memory file shrank is not
//   the VM's fault: the loop freezes (below) instead of dropping the VM.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "uffd/kernel_calls.h"
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
  uint64_t id = 0;  // Serial from 1, for logs.
  pid_t pid = 0;    // The peer as this pid namespace sees it; 0 if unknown.
  UniqueFd uffd;
  UniqueFd pidfd;       // Readable when the peer exits; may be invalid.
  UniqueFd connection;  // The handshake socket, watched for hang-up; may
                        // be invalid (a peer that closes it at once).
  RegionTable regions;
  RemovedRanges removed;
  // The working set to prefetch (shared by every VM; null: none) and how
  // far this VM has got through it.
  std::shared_ptr<const PrefetchPlan> plan;
  PrefetchCursor prefetch;
  bool recording = false;  // This VM's faults feed the recorder.
  absl::Time connected;
  VmStats stats;

  // The loop's own bookkeeping. Faults read and not yet resolved, with when
  // they were read (their service time counts from then).
  struct Fault {
    uint64_t address;
    absl::Time read;
  };
  std::deque<Fault> faults;
  // After EAGAIN: nothing is tried for this VM before `retry_at`.
  absl::Time retry_at = absl::InfinitePast();
  int again_attempts = 0;  // EAGAINs in a row.
  absl::Time again_since;  // When the first of them came.

  explicit ServedVm(RegionTable table) : regions(std::move(table)) {}
};

class FaultLoop {
 public:
  struct Options {
    // For messages: "fault loop 2".
    std::string name = "fault loop";
    // Records the first VM's working set (may be null).
    WorkingSetRecorder* recorder = nullptr;
    // Called (on the loop's thread) with each VM that leaves and why.
    std::function<void(const ServedVm&, const std::string& why)> on_leave;
    // Called (on the loop's thread) when a copy failed because the memory
    // file changed under it (`what`: how); the loop has frozen itself.
    std::function<void(const std::string& what)> on_file_changed;
    // The kernel calls that tests make fail; null: the real kernel.
    const KernelCalls* kernel = nullptr;
  };

  // The loop's epoll, wake-up eventfd and retry timerfd, or why not.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FaultLoop>> Create(
      const MemoryFile& memory, Options options);
  ~FaultLoop();
  FaultLoop(const FaultLoop&) = delete;
  FaultLoop& operator=(const FaultLoop&) = delete;

  // Hands `vm` to the loop (any thread); served from its next turn.
  // Returns it back, untaken, if the loop is dead or stopping.
  [[nodiscard]] std::unique_ptr<ServedVm> Add(std::unique_ptr<ServedVm> vm);
  // Serves until Stop(); VMs still there leave. An error: the loop failed
  // (epoll_wait), its VMs have left saying so, and it is dead() for good.
  [[nodiscard]] absl::Status Run();
  void Stop();  // Any thread.
  // Stops resolving faults and prefetching for good, keeping every uffd
  // open (any thread): the memory file changed, and a fault left waiting
  // is better than one served wrong bytes (a closed uffd would give the VM
  // zero pages). VMs still leave when their process exits.
  void Freeze();

  bool dead() const { return dead_.load(); }
  // The VMs being served now, each as "vm ID pid PID: STATS" (any thread).
  std::vector<std::string> Describe() const;
  size_t vm_count() const;

 private:
  FaultLoop(const MemoryFile& memory, Options options);

  // What resolving one fault came to.
  struct Outcome {
    bool again = false;   // EAGAIN: retry at the VM's retry time.
    bool frozen = false;  // The memory file changed: leave it unresolved.
    std::string error;    // Non-empty: the VM must go.
  };

  void Wake();
  void TakeNewVms();
  void ApplyFreeze();
  ServedVm* Find(uint64_t id);
  void Drop(uint64_t id, const std::string& why);
  // Takes the VM's descriptors out of the epoll and closes them.
  void Release(ServedVm& vm);
  // Reads the VM's pending messages, then resolves its faults unless it
  // waits for its retry time. Returns an error message if the VM must go.
  std::string ServeEvents(ServedVm& vm);
  // Reads messages until none are pending: REMOVE applied at once,
  // PAGEFAULTs queued.
  std::string DrainEvents(ServedVm& vm);
  // Resolves the VM's queued faults in order, until one meets EAGAIN.
  std::string ResolveQueue(ServedVm& vm);
  Outcome Resolve(ServedVm& vm, uint64_t address, absl::Time read);
  // An EAGAIN: sets the VM's retry time, or says it has waited too long.
  std::string Again(ServedVm& vm);
  // The retry times that are due: their VMs' faults are tried again.
  void RetryDue();
  [[nodiscard]] absl::Status ArmRetryTimer();
  std::string PrefetchOneSpan(ServedVm& vm);
  // EFAULT from a copy: whether the memory file changed in place (then
  // the loop freezes and on_file_changed is told).
  bool FileChanged();

  const MemoryFile& memory_;
  const Options options_;
  const KernelCalls& kernel_;
  UniqueFd epoll_;
  UniqueFd wake_;   // eventfd: new VMs, Stop(), Freeze().
  UniqueFd timer_;  // timerfd: the nearest retry time.

  // The loop's thread only. VMs with prefetching left (the turn does not
  // sleep while one of them is not waiting for a retry time), VMs waiting
  // for one, and when the timer is armed for.
  std::vector<uint64_t> prefetching_;
  std::set<uint64_t> waiting_;
  absl::Time timer_armed_for_ = absl::InfiniteFuture();
  bool frozen_ = false;          // Set by FileChanged() or Freeze().
  bool freeze_applied_ = false;  // The uffds are out of the epoll.

  std::atomic<bool> dead_{false};
  mutable std::mutex mu_;  // Guards the rest.
  std::vector<std::unique_ptr<ServedVm>> inbox_;
  // Changed under mu_ by the loop's thread only, which may read it
  // without the lock.
  std::map<uint64_t, std::unique_ptr<ServedVm>> vms_;
  bool stop_ = false;
  bool freeze_ = false;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_FAULT_LOOP_H_
