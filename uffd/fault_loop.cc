#include "uffd/fault_loop.h"

#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "uffd/userfaultfd.h"

namespace fcvm::uffd {
namespace {

// epoll data: the VM's id, shifted, with the low bit saying which fd.
constexpr uint64_t kWakeTag = 0;
uint64_t Tag(uint64_t id, bool pidfd) { return (id << 1) | (pidfd ? 1 : 0); }

// 2 MiB of zeros: zero "pages" for hugetlbfs regions, where UFFDIO_ZEROPAGE
// is not supported.
const uint8_t* ZeroSource() {
  static const uint8_t* zeros = new uint8_t[2 << 20]();
  return zeros;
}

// Messages read per read(): one syscall for a burst of faults.
constexpr int kBatch = 64;

// EAGAIN: the address space is changing (an event such as REMOVE is in
// flight). Reading the event is not enough: the kernel clears the state
// only when the thread that caused it (madvise, in the VM) runs again. So
// the retry must give it a CPU: yield, then sleep, growing to 1 ms.
constexpr absl::Duration kAgainLimit = absl::Seconds(10);
void BackOff(int attempt) {
  if (attempt < 4) {
    sched_yield();
  } else {
    absl::SleepFor(
        absl::Microseconds(std::min(1000, 10 << std::min(attempt - 4, 7))));
  }
}

}  // namespace

void RemovedRanges::Add(uint64_t start, uint64_t end) {
  if (start >= end) return;
  // Merge with every range touching [start, end).
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin() && std::prev(it)->second >= start) --it;
  while (it != ranges_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_[start] = end;
}

bool RemovedRanges::Contains(uint64_t address) const {
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return false;
  --it;
  return address < it->second;
}

bool RemovedRanges::Intersects(uint64_t start, uint64_t end) const {
  auto it = ranges_.lower_bound(end);
  if (it == ranges_.begin()) return false;
  --it;
  return it->second > start;
}

void RemovedRanges::Remove(uint64_t start, uint64_t end) {
  if (start >= end) return;
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin() && std::prev(it)->second > start) --it;
  while (it != ranges_.end() && it->first < end) {
    const uint64_t s = it->first, e = it->second;
    it = ranges_.erase(it);
    if (s < start) ranges_[s] = start;
    if (e > end) {
      ranges_[end] = e;
      break;
    }
  }
}

FaultLoop::FaultLoop(const MemoryFile& memory, Options options)
    : memory_(memory), options_(std::move(options)) {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = kWakeTag;
  epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event);
}

FaultLoop::~FaultLoop() = default;

void FaultLoop::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void FaultLoop::Add(std::unique_ptr<ServedVm> vm) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back(std::move(vm));
  }
  Wake();
}

void FaultLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  Wake();
}

size_t FaultLoop::vm_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vms_.size() + inbox_.size();
}

std::vector<std::string> FaultLoop::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> lines;
  for (const auto& [id, vm] : vms_) {
    lines.push_back(
        absl::StrCat("vm ", id, " pid ", vm->pid, ": ", vm->stats.ToString()));
  }
  return lines;
}

void FaultLoop::TakeNewVms() {
  std::vector<std::unique_ptr<ServedVm>> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(inbox_);
  }
  for (std::unique_ptr<ServedVm>& vm : taken) {
    const uint64_t id = vm->id;
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = Tag(id, false);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, vm->uffd.get(), &event) != 0) {
      const std::string why =
          absl::StrCat("cannot watch its uffd: ", strerror(errno));
      if (options_.on_leave) options_.on_leave(*vm, why);
      continue;
    }
    if (vm->pidfd) {
      event.data.u64 = Tag(id, true);
      epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, vm->pidfd.get(), &event);
    }
    if (!vm->prefetch.empty()) prefetching_.push_back(id);
    std::lock_guard<std::mutex> lock(mu_);
    vms_[id] = std::move(vm);
  }
}

void FaultLoop::Drop(uint64_t id, const std::string& why) {
  std::unique_ptr<ServedVm> vm;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = vms_.find(id);
    if (it == vms_.end()) return;
    vm = std::move(it->second);
    vms_.erase(it);
  }
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, vm->uffd.get(), nullptr);
  if (vm->pidfd)
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, vm->pidfd.get(), nullptr);
  FinishRecording(*vm);
  if (options_.on_leave) options_.on_leave(*vm, why);
}

void FaultLoop::FinishRecording(ServedVm& vm) {
  if (!vm.recording || options_.recorder == nullptr) return;
  vm.recording = false;
  absl::StatusOr<size_t> pages = options_.recorder->Finish();
  if (!options_.log) return;
  if (!pages.ok()) {
    options_.log(
        absl::StrCat("working set not written: ", pages.status().message()));
  } else if (*pages > 0) {
    options_.log(absl::StrCat("working set: ", *pages,
                              " pages written, recorded from vm ", vm.id));
  }
}

std::string FaultLoop::DrainEvents(ServedVm& vm, std::deque<uint64_t>& faults) {
  uffd_msg messages[kBatch];
  for (;;) {
    const ssize_t got = read(vm.uffd.get(), messages, sizeof(messages));
    if (got < 0) {
      if (errno == EAGAIN) return "";
      if (errno == EINTR) continue;
      return absl::StrCat("reading its uffd failed: ", strerror(errno));
    }
    if (got == 0 || got % sizeof(uffd_msg) != 0) {
      return "its uffd returned a partial message";
    }
    for (size_t i = 0; i < got / sizeof(uffd_msg); ++i) {
      const uffd_msg& m = messages[i];
      switch (m.event) {
        case UFFD_EVENT_PAGEFAULT:
          faults.push_back(m.arg.pagefault.address);
          break;
        case UFFD_EVENT_REMOVE:
          vm.removed.Add(m.arg.remove.start, m.arg.remove.end);
          vm.stats.removes.fetch_add(1, std::memory_order_relaxed);
          vm.stats.removed_bytes.fetch_add(
              m.arg.remove.end - m.arg.remove.start, std::memory_order_relaxed);
          break;
        default:
          // UNMAP/REMAP/FORK were not asked for: nothing to do.
          break;
      }
    }
  }
}

std::string FaultLoop::Resolve(ServedVm& vm, uint64_t fault_address,
                               std::deque<uint64_t>& later) {
  const absl::Time start = absl::Now();
  const MemoryRegion* region = vm.regions.Find(fault_address);
  if (region == nullptr) {
    return absl::StrCat("fault at 0x", absl::Hex(fault_address),
                        ", outside every region it declared");
  }
  const uint64_t page = region->page_size;
  const uint64_t address = fault_address & ~(page - 1);
  for (int attempt = 0;; ++attempt) {
    const bool zero = vm.removed.Contains(address);
    ResolveResult result;
    const uint64_t offset = RegionTable::FileOffset(*region, address);
    if (zero && page == 4096) {
      result = ZeroPages(vm.uffd.get(), address, page);
    } else {
      result = Copy(vm.uffd.get(), address,
                    zero ? ZeroSource() : memory_.data() + offset, page);
    }
    switch (result.kind) {
      case ResolveResult::kDone:
        if (zero) {
          vm.removed.Remove(address, address + page);
          vm.stats.zero_faults.fetch_add(1, std::memory_order_relaxed);
        }
        vm.stats.faults.fetch_add(1, std::memory_order_relaxed);
        vm.stats.fault_bytes.fetch_add(page, std::memory_order_relaxed);
        if (!vm.working_set.empty()) {
          (std::binary_search(vm.working_set.begin(), vm.working_set.end(),
                              offset)
               ? vm.stats.faults_in_working_set
               : vm.stats.faults_outside_working_set)
              .fetch_add(1, std::memory_order_relaxed);
        }
        if (vm.recording && options_.recorder != nullptr) {
          if (options_.recorder->Recording(vm.pid, absl::Now())) {
            options_.recorder->Add(offset, page);
          } else {
            FinishRecording(vm);
          }
        }
        vm.stats.latency.Add(absl::Now() - start);
        return "";
      case ResolveResult::kExists:
        // Filled meanwhile (a prefetch without wakeups, a racing fault):
        // the faulting threads still sleep.
        vm.stats.exists.fetch_add(1, std::memory_order_relaxed);
        (void)uffd::Wake(vm.uffd.get(), address, page);
        vm.stats.latency.Add(absl::Now() - start);
        return "";
      case ResolveResult::kAgain: {
        vm.stats.retries.fetch_add(1, std::memory_order_relaxed);
        if (absl::Now() - start > kAgainLimit) {
          return absl::StrCat("UFFDIO_COPY kept answering EAGAIN for ",
                              absl::FormatDuration(kAgainLimit));
        }
        std::string failed = DrainEvents(vm, later);
        if (!failed.empty()) return failed;
        BackOff(attempt);
        continue;
      }
      case ResolveResult::kGone:
        return absl::StrCat("its address space is gone (",
                            strerror(result.error), ")");
      case ResolveResult::kInvalid:
        return absl::StrCat(zero ? "UFFDIO_ZEROPAGE" : "UFFDIO_COPY", " at 0x",
                            absl::Hex(address),
                            " failed: ", strerror(result.error));
    }
  }
}

std::string FaultLoop::ServeEvents(ServedVm& vm) {
  std::deque<uint64_t> faults;
  std::string failed = DrainEvents(vm, faults);
  while (failed.empty() && !faults.empty()) {
    const uint64_t address = faults.front();
    faults.pop_front();
    failed = Resolve(vm, address, faults);
  }
  return failed;
}

std::string FaultLoop::PrefetchOneBatch(ServedVm& vm) {
  const PrefetchRun& run = vm.prefetch[vm.prefetch_next];
  uint64_t done = vm.prefetch_run_done;
  while (done < run.length) {
    const uint64_t address = run.address + done;
    if (vm.removed.Intersects(address, run.address + run.length)) {
      // The VM gave some of it back: the fault path knows what to put
      // there (zeros), the prefetch does not.
      break;
    }
    const MemoryRegion* region = vm.regions.Find(address);
    const uint64_t page = region != nullptr ? region->page_size : 4096;
    ResolveResult result =
        Copy(vm.uffd.get(), address, memory_.data() + run.file_offset + done,
             run.length - done, /*wake=*/false);
    done += result.bytes;
    vm.stats.prefetched_bytes.fetch_add(result.bytes,
                                        std::memory_order_relaxed);
    vm.stats.prefetched_pages.fetch_add(result.bytes / page,
                                        std::memory_order_relaxed);
    switch (result.kind) {
      case ResolveResult::kDone:
        break;
      case ResolveResult::kExists:
        // That page came on demand first: skip it (its faulting threads
        // were woken by the fault path).
        done += page;
        break;
      case ResolveResult::kAgain: {
        vm.stats.retries.fetch_add(1, std::memory_order_relaxed);
        std::deque<uint64_t> faults;
        std::string failed = DrainEvents(vm, faults);
        while (failed.empty() && !faults.empty()) {
          const uint64_t a = faults.front();
          faults.pop_front();
          failed = Resolve(vm, a, faults);
        }
        if (!failed.empty()) return failed;
        // The rest of the run waits for the next turn: the address space
        // is still changing, and its faults come first.
        vm.prefetch_run_done = done;
        return "";
      }
      case ResolveResult::kGone:
        return absl::StrCat("its address space is gone (",
                            strerror(result.error), ")");
      case ResolveResult::kInvalid:
        // A removed or unregistered range: leave the rest of this run to
        // the fault path.
        done = run.length;
        break;
    }
  }
  ++vm.prefetch_next;
  vm.prefetch_run_done = 0;
  return "";
}

void FaultLoop::Run() {
  epoll_event events[64];
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    TakeNewVms();
    const int n =
        epoll_wait(epoll_.get(), events, 64, prefetching_.empty() ? -1 : 0);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        (void)!read(wake_.get(), &count, sizeof(count));
        continue;
      }
      const uint64_t id = tag >> 1;
      ServedVm* vm;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = vms_.find(id);
        if (it == vms_.end()) continue;  // Dropped earlier in this turn.
        vm = it->second.get();
      }
      if (tag & 1) {
        Drop(id, "its process exited");
        continue;
      }
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        Drop(id, "its uffd reported an error");
        continue;
      }
      const std::string failed = ServeEvents(*vm);
      if (!failed.empty()) Drop(id, failed);
    }
    // One batch per prefetching VM per turn; finished or dropped VMs leave
    // the list.
    std::vector<uint64_t> still;
    for (uint64_t id : prefetching_) {
      ServedVm* vm;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = vms_.find(id);
        if (it == vms_.end()) continue;
        vm = it->second.get();
      }
      const std::string failed = PrefetchOneBatch(*vm);
      if (!failed.empty()) {
        Drop(id, failed);
      } else if (vm->prefetch_next < vm->prefetch.size()) {
        still.push_back(id);
      }
    }
    prefetching_.swap(still);
  }
  std::vector<uint64_t> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, vm] : vms_) left.push_back(id);
  }
  for (uint64_t id : left) Drop(id, "the server is stopping");
}

}  // namespace fcvm::uffd
