#ifndef FCVM_UFFD_WORKING_SET_H_
#define FCVM_UFFD_WORKING_SET_H_

// Recording a VM's working set (the file offsets of the pages it faults
// in during a window after its handshake) and prefetching a recorded set
// into later VMs: one plan, shared by every VM, of runs of contiguous file
// pages of at most one batch, in file order; each VM walks it with a
// cursor of its own, placing each run in its own address space.

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "uffd/region_table.h"
#include "uffd/working_set.pb.h"

namespace fcvm::uffd {

// The file it is kept in, beside the memory file.
std::string WorkingSetPath(const std::string& memory_file);

// Reads the working set at `path` if it was recorded against a file of
// this size and mtime; nullopt if there is none or it belongs to another
// file (the file changed). Errors: unreadable or corrupt.
[[nodiscard]] absl::StatusOr<std::optional<WorkingSet>> LoadWorkingSet(
    const std::string& path, uint64_t file_size, int64_t file_mtime_ns);

// Writes `set` to `path` atomically (fsync'd: slow, keep it off the fault
// path).
[[nodiscard]] absl::Status WriteWorkingSet(const std::string& path,
                                           const WorkingSet& set);

// Collects the file offsets one VM faults in during `window` from Start().
// Thread-safe: the server starts and closes it, the fault loop serving the
// recorded VM adds to it (a set insertion under a mutex, no I/O).
class WorkingSetRecorder {
 public:
  WorkingSetRecorder(uint64_t file_size, int64_t file_mtime_ns,
                     absl::Duration window);

  // Starts the window at `now` for the VM `vm_id` (process `pid`, 0 if
  // unknown). Only the first call starts one; returns whether it did.
  bool Start(uint64_t vm_id, pid_t pid, absl::Time now);
  // Records a page the VM `vm_id` faulted in at `now`; ignored for any
  // other VM, outside the window, once closed, or in another page size
  // than the first page recorded.
  void Add(uint64_t vm_id, uint64_t file_offset, uint64_t page_size,
           absl::Time now);
  // When the window ends: InfiniteFuture before Start().
  absl::Time deadline() const;
  // The VM being recorded: 0 before Start().
  uint64_t vm_id() const;
  // Ends the recording (the window is over, or the VM left): the set,
  // tied to the memory file, the first time; nullopt before Start() or
  // once closed.
  std::optional<WorkingSet> Close(absl::Time now);
  bool closed() const;

 private:
  const uint64_t file_size_;
  const int64_t file_mtime_ns_;
  const absl::Duration window_;
  mutable std::mutex mu_;
  uint64_t vm_id_ = 0;
  pid_t pid_ = 0;
  absl::Time start_ = absl::InfiniteFuture();
  bool closed_ = false;
  uint64_t page_size_ = 0;
  std::set<uint64_t> offsets_;
};

// A working set ready to prefetch: immutable, and shared (one copy per
// server, whatever the number of VMs).
class PrefetchPlan {
 public:
  // Contiguous pages of the file, at most one batch.
  struct Run {
    uint64_t file_offset;
    uint64_t length;  // A multiple of page_size().
  };

  // Runs of `set`'s pages of at most `batch_bytes` (at least one page).
  PrefetchPlan(const WorkingSet& set, uint64_t batch_bytes);

  uint64_t page_size() const { return page_size_; }
  size_t pages() const { return pages_; }
  const std::vector<Run>& runs() const { return runs_; }
  // Whether the page at `file_offset` is in the set (binary search).
  bool Contains(uint64_t file_offset) const;

 private:
  uint64_t page_size_ = 0;
  size_t pages_ = 0;
  std::vector<Run> runs_;  // By file offset.
};

// Where one VM's prefetch stands: a run of the plan and the bytes of it
// done (or skipped).
struct PrefetchCursor {
  size_t run = 0;
  uint64_t done = 0;
};

// A piece of a run placed in one VM's address space.
struct PrefetchSpan {
  uint64_t address;      // In the VM.
  uint64_t file_offset;  // In the memory file.
  uint64_t length;       // A multiple of the page size, inside one region.
};

// The next span to copy into the VM with `table`, from `cursor` on: the
// rest of the current run, cut at the end of the region holding it. Parts
// of the plan no region of the VM holds (or holds in another page size)
// are skipped, moving `cursor`. nullopt: the plan is done.
std::optional<PrefetchSpan> NextPrefetchSpan(const PrefetchPlan& plan,
                                             const RegionTable& table,
                                             PrefetchCursor& cursor);

// Moves `cursor` past `bytes` of the current run (a span copied, or given
// up on).
void AdvancePrefetch(const PrefetchPlan& plan, PrefetchCursor& cursor,
                     uint64_t bytes);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_WORKING_SET_H_
