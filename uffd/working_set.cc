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

absl::StatusOr<std::optional<WorkingSet>> LoadWorkingSet(
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

WorkingSetRecorder::WorkingSetRecorder(std::string path, uint64_t file_size,
                                       int64_t file_mtime_ns,
                                       absl::Duration window)
    : path_(std::move(path)),
      file_size_(file_size),
      file_mtime_ns_(file_mtime_ns),
      window_(window) {}

bool WorkingSetRecorder::Start(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ != 0 || finished_) return false;
  pid_ = pid;
  start_ = absl::Now();
  return true;
}

bool WorkingSetRecorder::Recording(pid_t pid, absl::Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return !finished_ && pid_ == pid && pid != 0 && now - start_ < window_;
}

void WorkingSetRecorder::Add(uint64_t file_offset, uint64_t page_size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  if (page_size_ == 0) page_size_ = page_size;
  if (page_size == page_size_) offsets_.insert(file_offset);
}

bool WorkingSetRecorder::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

absl::StatusOr<size_t> WorkingSetRecorder::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || pid_ == 0) return 0;
  finished_ = true;
  WorkingSet set;
  set.set_memory_file_size(file_size_);
  set.set_memory_file_mtime_ns(file_mtime_ns_);
  set.set_page_size(page_size_);
  set.set_window_seconds(
      absl::ToDoubleSeconds(std::min(absl::Now() - start_, window_)));
  set.set_recorded_from_pid(pid_);
  for (uint64_t offset : offsets_) set.add_page_offsets(offset);
  RETURN_IF_ERROR(WriteFileAtomically(path_, set.SerializeAsString(), 0644));
  return offsets_.size();
}

std::vector<PrefetchRun> PlanPrefetch(const RegionTable& table,
                                      const WorkingSet& set,
                                      uint64_t batch_bytes) {
  // Regions by file offset, to place each recorded page.
  std::vector<MemoryRegion> by_offset = table.regions();
  std::sort(by_offset.begin(), by_offset.end(),
            [](const MemoryRegion& a, const MemoryRegion& b) {
              return a.offset < b.offset;
            });
  std::vector<PrefetchRun> runs;
  for (uint64_t offset : set.page_offsets()) {
    auto it = std::upper_bound(
        by_offset.begin(), by_offset.end(), offset,
        [](uint64_t o, const MemoryRegion& r) { return o < r.offset; });
    if (it == by_offset.begin()) continue;
    const MemoryRegion& region = *--it;
    const uint64_t page = region.page_size;
    if (page != set.page_size() || offset % page != 0 ||
        offset - region.offset >= region.size) {
      continue;
    }
    const uint64_t address = region.base + (offset - region.offset);
    if (!runs.empty()) {
      PrefetchRun& last = runs.back();
      if (last.file_offset + last.length == offset &&
          last.address + last.length == address &&
          last.length + page <= std::max(batch_bytes, page)) {
        last.length += page;
        continue;
      }
    }
    runs.push_back({address, offset, page});
  }
  return runs;
}

}  // namespace fcvm::uffd
