#include "uffd/fault_loop.h"

#include <linux/userfaultfd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "uffd/userfaultfd.h"

namespace fcvm::uffd {
namespace {

// epoll data: the loop's own descriptors, or a VM's id shifted, with the
// low bits saying which of its descriptors (ids start at 1, so a VM's tag
// is never one of the loop's).
constexpr uint64_t kWakeTag = 0;
constexpr uint64_t kTimerTag = 1;
enum VmFd : uint64_t { kUffd = 0, kPidfd = 1, kConnection = 2 };
uint64_t Tag(uint64_t id, VmFd fd) { return (id << 2) | fd; }

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
// the VM's faults wait a little, growing to 1 ms, while the loop serves
// the others; a VM that makes no progress for 10 s is given up.
constexpr absl::Duration kAgainLimit = absl::Seconds(10);
absl::Duration AgainDelay(int attempt) {
  return std::min(
      absl::Milliseconds(1),
      absl::Microseconds(10) * (int64_t{1} << std::min(attempt, 7)));
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
    : memory_(memory),
      options_(std::move(options)),
      kernel_(options_.kernel != nullptr ? *options_.kernel
                                         : KernelCalls::Real()) {}

FaultLoop::~FaultLoop() = default;

[[nodiscard]] absl::StatusOr<std::unique_ptr<FaultLoop>> FaultLoop::Create(
    const MemoryFile& memory, Options options) {
  std::unique_ptr<FaultLoop> loop(new FaultLoop(memory, std::move(options)));
  const std::string& name = loop->options_.name;
  loop->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_) return ErrnoStatus(absl::StrCat(name, ": epoll_create1"));
  loop->wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->wake_) return ErrnoStatus(absl::StrCat(name, ": eventfd"));
  loop->timer_.reset(
      timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!loop->timer_) return ErrnoStatus(absl::StrCat(name, ": timerfd_create"));
  for (auto [fd, tag] :
       {std::pair<int, uint64_t>{loop->wake_.get(), kWakeTag},
        std::pair<int, uint64_t>{loop->timer_.get(), kTimerTag}}) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = tag;
    if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      return ErrnoStatus(absl::StrCat(name, ": epoll_ctl"));
    }
  }
  return loop;
}

void FaultLoop::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

std::unique_ptr<ServedVm> FaultLoop::Add(std::unique_ptr<ServedVm> vm) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_ || stop_) return vm;
    inbox_.push_back(std::move(vm));
  }
  Wake();
  return nullptr;
}

void FaultLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  Wake();
}

void FaultLoop::Freeze() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    freeze_ = true;
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

ServedVm* FaultLoop::Find(uint64_t id) {
  // Only this thread changes vms_: no lock needed to read it here.
  auto it = vms_.find(id);
  return it == vms_.end() ? nullptr : it->second.get();
}

void FaultLoop::TakeNewVms() {
  std::vector<std::unique_ptr<ServedVm>> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(inbox_);
  }
  for (std::unique_ptr<ServedVm>& vm : taken) {
    const uint64_t id = vm->id;
    // A frozen loop serves nothing: only the exit watches are taken.
    struct Watch {
      int fd;
      VmFd which;
      uint32_t events;
      const char* what;
    };
    const Watch watches[] = {
        {frozen_ ? -1 : vm->uffd.get(), kUffd, EPOLLIN, "its uffd"},
        {vm->pidfd.get(), kPidfd, EPOLLIN, "its process (pidfd)"},
        {vm->connection.get(), kConnection, EPOLLRDHUP, "its socket"},
    };
    std::string failed;
    for (const Watch& w : watches) {
      if (w.fd < 0) continue;
      epoll_event event = {};
      event.events = w.events;
      event.data.u64 = Tag(id, w.which);
      if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, w.fd, &event) != 0) {
        failed = absl::StrCat("cannot watch ", w.what, ": ", strerror(errno));
        break;
      }
    }
    if (!failed.empty()) {
      Release(*vm);
      if (options_.on_leave) options_.on_leave(*vm, failed);
      continue;
    }
    if (vm->plan != nullptr && !frozen_) prefetching_.push_back(id);
    std::lock_guard<std::mutex> lock(mu_);
    vms_[id] = std::move(vm);
  }
}

void FaultLoop::ApplyFreeze() {
  frozen_ = true;
  freeze_applied_ = true;
  // The uffds stay open (their VMs wait) but unwatched: nothing read,
  // nothing resolved, and no level-triggered wake-ups for them.
  for (auto& [id, vm] : vms_) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, vm->uffd.get(), nullptr);
    vm->faults.clear();
  }
  prefetching_.clear();
  waiting_.clear();
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
  waiting_.erase(id);
  Release(*vm);
  if (options_.on_leave) options_.on_leave(*vm, why);
}

void FaultLoop::Release(ServedVm& vm) {
  // Closed before the VM's leaving is reported: once "left" is in the log,
  // the server holds nothing of it (a caller counting descriptors after
  // that line sees them gone).
  for (UniqueFd* fd : {&vm.uffd, &vm.pidfd, &vm.connection}) {
    if (fd->get() < 0) continue;
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd->get(), nullptr);
    fd->reset();
  }
}

bool FaultLoop::FileChanged() {
  absl::StatusOr<FileChange> change = memory_.Check();
  if (!change.ok() || !change->in_place) return false;
  // Nothing more is served from this turn on; the uffds leave the epoll
  // at the next.
  frozen_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    freeze_ = true;
  }
  if (options_.on_file_changed) options_.on_file_changed(change->what);
  return true;
}

std::string FaultLoop::DrainEvents(ServedVm& vm) {
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
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < got / sizeof(uffd_msg); ++i) {
      const uffd_msg& m = messages[i];
      switch (m.event) {
        case UFFD_EVENT_PAGEFAULT:
          vm.faults.push_back({m.arg.pagefault.address, now});
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

FaultLoop::Outcome FaultLoop::Resolve(ServedVm& vm, uint64_t fault_address,
                                      absl::Time read) {
  const MemoryRegion* region = vm.regions.Find(fault_address);
  if (region == nullptr) {
    return {false, false,
            absl::StrCat("fault at 0x", absl::Hex(fault_address),
                         ", outside every region it declared")};
  }
  const uint64_t page = region->page_size;
  const uint64_t address = fault_address & ~(page - 1);
  const bool zero = vm.removed.Contains(address);
  const uint64_t offset = RegionTable::FileOffset(*region, address);
  const ResolveResult result =
      zero && page == 4096
          ? kernel_.ZeroPages(vm.uffd.get(), address, page)
          : kernel_.Copy(vm.uffd.get(), address,
                         zero ? ZeroSource() : memory_.data() + offset, page,
                         /*wake=*/true);
  switch (result.kind) {
    case ResolveResult::kDone: {
      const absl::Time now = absl::Now();
      if (zero) {
        vm.removed.Remove(address, address + page);
        vm.stats.zero_faults.fetch_add(1, std::memory_order_relaxed);
      }
      vm.stats.faults.fetch_add(1, std::memory_order_relaxed);
      vm.stats.fault_bytes.fetch_add(page, std::memory_order_relaxed);
      if (vm.plan != nullptr) {
        (vm.plan->Contains(offset) ? vm.stats.faults_in_working_set
                                   : vm.stats.faults_outside_working_set)
            .fetch_add(1, std::memory_order_relaxed);
      }
      if (vm.recording && options_.recorder != nullptr) {
        options_.recorder->Add(vm.id, offset, page, now);
      }
      vm.stats.latency.Add(now - read);
      return {};
    }
    case ResolveResult::kExists:
      // Filled meanwhile (a prefetch without wakeups, a racing fault):
      // the faulting threads still sleep.
      vm.stats.exists.fetch_add(1, std::memory_order_relaxed);
      (void)uffd::Wake(vm.uffd.get(), address, page);
      vm.stats.latency.Add(absl::Now() - read);
      return {};
    case ResolveResult::kAgain:
      return {true, false, ""};
    case ResolveResult::kGone:
      // EFAULT also comes from our side: the memory file shrank under the
      // mapping. Then the VM is not gone, and must not be told it is.
      if (!zero && result.error == EFAULT && FileChanged()) {
        return {false, true, ""};
      }
      return {false, false,
              absl::StrCat("its address space is gone (",
                           strerror(result.error), ")")};
    case ResolveResult::kInvalid:
      break;
  }
  return {
      false, false,
      absl::StrCat(zero ? "UFFDIO_ZEROPAGE" : "UFFDIO_COPY", " at 0x",
                   absl::Hex(address), " failed: ", strerror(result.error))};
}

std::string FaultLoop::Again(ServedVm& vm) {
  const absl::Time now = absl::Now();
  vm.stats.retries.fetch_add(1, std::memory_order_relaxed);
  if (vm.again_attempts == 0) {
    vm.again_since = now;
  } else if (now - vm.again_since > kAgainLimit) {
    return absl::StrCat("UFFDIO_COPY kept answering EAGAIN for ",
                        absl::FormatDuration(kAgainLimit));
  }
  vm.retry_at = now + AgainDelay(vm.again_attempts++);
  waiting_.insert(vm.id);
  return "";
}

std::string FaultLoop::ResolveQueue(ServedVm& vm) {
  if (frozen_ || vm.retry_at > absl::Now()) return "";
  while (!vm.faults.empty()) {
    const ServedVm::Fault fault = vm.faults.front();
    const Outcome outcome = Resolve(vm, fault.address, fault.read);
    if (!outcome.error.empty()) return outcome.error;
    if (outcome.frozen) return "";
    if (outcome.again) {
      // Read what is queued (the REMOVE the VM's madvise waits on), then
      // let the VM's thread run before trying again.
      std::string failed = DrainEvents(vm);
      if (!failed.empty()) return failed;
      return Again(vm);
    }
    vm.again_attempts = 0;
    vm.faults.pop_front();
  }
  return "";
}

std::string FaultLoop::ServeEvents(ServedVm& vm) {
  std::string failed = DrainEvents(vm);
  if (!failed.empty()) return failed;
  return ResolveQueue(vm);
}

void FaultLoop::RetryDue() {
  const absl::Time now = absl::Now();
  std::vector<uint64_t> due;
  for (uint64_t id : waiting_) {
    ServedVm* vm = Find(id);
    if (vm == nullptr || vm->retry_at <= now) due.push_back(id);
  }
  for (uint64_t id : due) {
    waiting_.erase(id);
    ServedVm* vm = Find(id);
    if (vm == nullptr) continue;
    vm->retry_at = absl::InfinitePast();
    const std::string failed = ResolveQueue(*vm);
    if (!failed.empty()) Drop(id, failed);
  }
}

[[nodiscard]] absl::Status FaultLoop::ArmRetryTimer() {
  absl::Time earliest = absl::InfiniteFuture();
  for (uint64_t id : waiting_) {
    if (const ServedVm* vm = Find(id))
      earliest = std::min(earliest, vm->retry_at);
  }
  if (earliest == timer_armed_for_) return absl::OkStatus();
  itimerspec spec = {};  // All zero: disarmed.
  if (earliest != absl::InfiniteFuture()) {
    const absl::Duration in =
        std::max(earliest - absl::Now(), absl::Nanoseconds(1));
    spec.it_value = absl::ToTimespec(in);
  }
  if (timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) {
    return ErrnoStatus(absl::StrCat(options_.name, ": timerfd_settime"));
  }
  timer_armed_for_ = earliest;
  return absl::OkStatus();
}

std::string FaultLoop::PrefetchOneSpan(ServedVm& vm) {
  const PrefetchPlan& plan = *vm.plan;
  const std::optional<PrefetchSpan> span =
      NextPrefetchSpan(plan, vm.regions, vm.prefetch);
  if (!span.has_value()) return "";
  if (vm.removed.Intersects(span->address, span->address + span->length)) {
    // The VM gave some of it back: the fault path knows what to put there
    // (zeros), the prefetch does not.
    AdvancePrefetch(plan, vm.prefetch, span->length);
    return "";
  }
  const uint64_t page = plan.page_size();
  const ResolveResult result =
      kernel_.Copy(vm.uffd.get(), span->address,
                   memory_.data() + span->file_offset, span->length,
                   /*wake=*/false);
  vm.stats.prefetched_bytes.fetch_add(result.bytes, std::memory_order_relaxed);
  vm.stats.prefetched_pages.fetch_add(result.bytes / page,
                                      std::memory_order_relaxed);
  switch (result.kind) {
    case ResolveResult::kDone:
      vm.again_attempts = 0;
      AdvancePrefetch(plan, vm.prefetch, span->length);
      return "";
    case ResolveResult::kExists:
      // That page came on demand first (its faulting threads were woken by
      // the fault path): the rest of the span next turn.
      vm.again_attempts = 0;
      AdvancePrefetch(plan, vm.prefetch, result.bytes + page);
      return "";
    case ResolveResult::kAgain: {
      // The address space is changing: what was copied stays, the rest
      // waits for the VM's retry time, its faults first.
      if (result.bytes > 0) vm.again_attempts = 0;
      AdvancePrefetch(plan, vm.prefetch, result.bytes);
      std::string failed = DrainEvents(vm);
      if (!failed.empty()) return failed;
      return Again(vm);
    }
    case ResolveResult::kGone:
      if (result.error == EFAULT && FileChanged()) return "";
      return absl::StrCat("its address space is gone (", strerror(result.error),
                          ")");
    case ResolveResult::kInvalid:
      // A removed or unregistered range: left to the fault path.
      AdvancePrefetch(plan, vm.prefetch, span->length);
      return "";
  }
  return "";
}

[[nodiscard]] absl::Status FaultLoop::Run() {
  epoll_event events[64];
  absl::Status failure;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      if (freeze_) frozen_ = true;
    }
    if (frozen_ && !freeze_applied_) ApplyFreeze();
    TakeNewVms();
    if (failure = ArmRetryTimer(); !failure.ok()) break;
    // Sleep only if no prefetch can go on now.
    const absl::Time now = absl::Now();
    bool prefetch_ready = false;
    for (uint64_t id : prefetching_) {
      const ServedVm* vm = Find(id);
      if (vm != nullptr && vm->retry_at <= now) prefetch_ready = true;
    }
    const int n =
        kernel_.EpollWait(epoll_.get(), events, 64, prefetch_ready ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      failure = ErrnoStatus(absl::StrCat(options_.name, ": epoll_wait"));
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        (void)!read(wake_.get(), &count, sizeof(count));
        continue;
      }
      if (tag == kTimerTag) {
        uint64_t expirations;
        (void)!read(timer_.get(), &expirations, sizeof(expirations));
        timer_armed_for_ = absl::InfiniteFuture();  // One-shot.
        RetryDue();
        continue;
      }
      const uint64_t id = tag >> 2;
      ServedVm* vm = Find(id);
      if (vm == nullptr) continue;  // Dropped earlier in this turn.
      switch (static_cast<VmFd>(tag & 3)) {
        case kPidfd:
          Drop(id, "its process exited");
          break;
        case kConnection:
          Drop(id, "it closed its end of the handshake socket");
          break;
        case kUffd:
          if (events[i].events & (EPOLLERR | EPOLLHUP)) {
            Drop(id, "its uffd reported an error");
          } else if (const std::string failed = ServeEvents(*vm);
                     !failed.empty()) {
            Drop(id, failed);
          }
          break;
      }
    }
    // One span per prefetching VM per turn (unless it waits for its retry
    // time); finished or dropped VMs leave the list.
    if (frozen_) continue;
    const absl::Time turn = absl::Now();
    std::vector<uint64_t> still;
    for (uint64_t id : prefetching_) {
      ServedVm* vm = Find(id);
      if (vm == nullptr) continue;
      if (vm->retry_at <= turn) {
        if (const std::string failed = PrefetchOneSpan(*vm); !failed.empty()) {
          Drop(id, failed);
          continue;
        }
      }
      if (vm->prefetch.run < vm->plan->runs().size()) still.push_back(id);
    }
    prefetching_.swap(still);
  }
  // Dead: Add() hands VMs back from now on. Those handed over meanwhile
  // leave with the others, saying why.
  std::vector<std::unique_ptr<ServedVm>> inbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure.ok()) dead_ = true;
    stop_ = true;
    inbox.swap(inbox_);
  }
  const std::string why =
      failure.ok() ? "the server is stopping"
                   : absl::StrCat("its fault loop failed: ", failure.message());
  std::vector<uint64_t> left;
  for (const auto& [id, vm] : vms_) left.push_back(id);
  for (uint64_t id : left) Drop(id, why);
  for (const std::unique_ptr<ServedVm>& vm : inbox) {
    if (options_.on_leave) options_.on_leave(*vm, why);
  }
  return failure;
}

}  // namespace fcvm::uffd
