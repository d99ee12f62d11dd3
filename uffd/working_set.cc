#include "uffd/working_set.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::uffd {

std::string WorkingSetPath(const std::string& memory_file) {
  return absl::StrCat(memory_file, ".working-set");
}

[[nodiscard]] absl::StatusOr<std::optional<WorkingSet>> LoadWorkingSet(
    const std::string& path, uint64_t file_size, int64_t file_mtime_ns) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  WorkingSet set;
  if (!set.ParseFromString(*bytes)) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a working set (corrupt?)"));
  }
  if (set.memory_file_size() != file_size ||
      set.memory_file_mtime_ns() != file_mtime_ns) {
    return std::nullopt;
  }
  return set;
}

[[nodiscard]] absl::Status WriteWorkingSet(const std::string& path,
                                           const WorkingSet& set) {
  return WriteFileAtomically(path, set.SerializeAsString(), 0644);
}

WorkingSetRecorder::WorkingSetRecorder(uint64_t file_size,
                                       int64_t file_mtime_ns,
                                       absl::Duration window)
    : file_size_(file_size), file_mtime_ns_(file_mtime_ns), window_(window) {}

bool WorkingSetRecorder::Start(uint64_t vm_id, pid_t pid, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (vm_id_ != 0 || closed_ || vm_id == 0) return false;
  vm_id_ = vm_id;
  pid_ = pid;
  start_ = now;
  return true;
}

void WorkingSetRecorder::Add(uint64_t vm_id, uint64_t file_offset,
                             uint64_t page_size, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || vm_id != vm_id_ || vm_id == 0 || now - start_ >= window_) {
    return;
  }
  if (page_size_ == 0) page_size_ = page_size;
  if (page_size == page_size_) offsets_.insert(file_offset);
}

absl::Time WorkingSetRecorder::deadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vm_id_ == 0 ? absl::InfiniteFuture() : start_ + window_;
}

uint64_t WorkingSetRecorder::vm_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vm_id_;
}

bool WorkingSetRecorder::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

std::optional<WorkingSet> WorkingSetRecorder::Close(absl::Time now) {
  std::set<uint64_t> offsets;
  WorkingSet set;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || vm_id_ == 0) return std::nullopt;
    closed_ = true;
    offsets.swap(offsets_);
    set.set_page_size(page_size_);
    set.set_window_seconds(
        absl::ToDoubleSeconds(std::min(now - start_, window_)));
    set.set_recorded_from_pid(pid_);
  }
  // Built outside the lock: the fault loop's Add() never waits for it.
  set.set_memory_file_size(file_size_);
  set.set_memory_file_mtime_ns(file_mtime_ns_);
  for (uint64_t offset : offsets) set.add_page_offsets(offset);
  return set;
}

PrefetchPlan::PrefetchPlan(const WorkingSet& set, uint64_t batch_bytes)
    : page_size_(set.page_size()) {
  if (page_size_ == 0) return;
  const uint64_t batch = std::max(batch_bytes, page_size_);
  // The recorded offsets are ascending and distinct; a corrupt or
  // hand-made set is sorted here rather than trusted.
  std::vector<uint64_t> offsets(set.page_offsets().begin(),
                                set.page_offsets().end());
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  for (uint64_t offset : offsets) {
    if (offset % page_size_ != 0) continue;
    ++pages_;
    if (!runs_.empty()) {
      Run& last = runs_.back();
      if (last.file_offset + last.length == offset &&
          last.length + page_size_ <= batch) {
        last.length += page_size_;
        continue;
      }
    }
    runs_.push_back({offset, page_size_});
  }
  runs_.shrink_to_fit();
}

bool PrefetchPlan::Contains(uint64_t file_offset) const {
  // The last run starting at or below `file_offset`.
  auto it = std::upper_bound(
      runs_.begin(), runs_.end(), file_offset,
      [](uint64_t o, const Run& run) { return o < run.file_offset; });
  if (it == runs_.begin()) return false;
  --it;
  return file_offset - it->file_offset < it->length;
}

std::optional<PrefetchSpan> NextPrefetchSpan(const PrefetchPlan& plan,
                                             const RegionTable& table,
                                             PrefetchCursor& cursor) {
  const std::vector<PrefetchPlan::Run>& runs = plan.runs();
  while (cursor.run < runs.size()) {
    const PrefetchPlan::Run& run = runs[cursor.run];
    if (cursor.done >= run.length) {
      ++cursor.run;
      cursor.done = 0;
      continue;
    }
    const uint64_t offset = run.file_offset + cursor.done;
    const MemoryRegion* region = table.FindByFileOffset(offset);
    if (region == nullptr || region->page_size != plan.page_size()) {
      // This VM does not have that page (or has it in other pages).
      cursor.done += plan.page_size();
      continue;
    }
    const uint64_t length = std::min(run.length - cursor.done,
                                     region->offset + region->size - offset);
    return PrefetchSpan{region->base + (offset - region->offset), offset,
                        length};
  }
  return std::nullopt;
}

void AdvancePrefetch(const PrefetchPlan& plan, PrefetchCursor& cursor,
                     uint64_t bytes) {
  if (cursor.run >= plan.runs().size()) return;
  cursor.done += bytes;
  if (cursor.done >= plan.runs()[cursor.run].length) {
    ++cursor.run;
    cursor.done = 0;
  }
}

}  // namespace fcvm::uffd
