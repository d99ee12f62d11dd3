#ifndef FCVM_UFFD_WORKING_SET_H_
#define FCVM_UFFD_WORKING_SET_H_

// Recording a VM's working set (the file offsets of the pages it faults
// in during a window after its handshake) and planning the prefetch of a
// recorded set into a later VM: runs of contiguous pages, each at most one
// batch, in file order.

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

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
absl::StatusOr<std::optional<WorkingSet>> LoadWorkingSet(
    const std::string& path, uint64_t file_size, int64_t file_mtime_ns);

// Collects faulted file offsets for `window` from Start(); thread-safe
// (one VM is recorded, from whichever thread serves it).
class WorkingSetRecorder {
 public:
  WorkingSetRecorder(std::string path, uint64_t file_size,
                     int64_t file_mtime_ns, absl::Duration window);

  // Starts the window for the VM with this pid (the first caller wins;
  // returns whether it is this one).
  bool Start(pid_t pid);
  // Whether `pid`'s faults are still being recorded.
  bool Recording(pid_t pid, absl::Time now) const;
  void Add(uint64_t file_offset, uint64_t page_size);
  // Writes the set (atomically) once, when the window is over or the VM
  // left; later calls do nothing. Returns the number of pages written.
  absl::StatusOr<size_t> Finish();
  bool finished() const;

 private:
  const std::string path_;
  const uint64_t file_size_;
  const int64_t file_mtime_ns_;
  const absl::Duration window_;
  mutable std::mutex mu_;
  pid_t pid_ = 0;
  absl::Time start_;
  bool finished_ = false;
  uint64_t page_size_ = 0;
  std::set<uint64_t> offsets_;
};

struct PrefetchRun {
  uint64_t address;      // In the VM.
  uint64_t file_offset;  // In the memory file.
  uint64_t length;       // A multiple of the region's page size.
};

// The recorded pages that fall in `table`'s regions (page sizes must
// match), as runs of at most `batch_bytes` (at least one page).
std::vector<PrefetchRun> PlanPrefetch(const RegionTable& table,
                                      const WorkingSet& set,
                                      uint64_t batch_bytes);

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_WORKING_SET_H_
