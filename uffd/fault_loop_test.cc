// The fault loop in-process: real userfaultfds (FakeFirecracker's guest
// memory, touched from threads of this process) served by a FaultLoop
// whose kernel calls a test can make fail on cue (EAGAIN, ESRCH, EINVAL, a
// partial copy, a failed epoll_wait).
#include "uffd/fault_loop.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "uffd/kernel_calls.h"
#include "uffd/memory_file.h"
#include "uffd/testing/fake_firecracker.h"

namespace fcvm::uffd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kFileBytes = 4 << 20;
constexpr uint64_t kVmBytes = 1 << 20;
// How long a test waits for what must happen before calling it a failure
// (never a measure of speed).
constexpr auto kPatience = std::chrono::seconds(30);

// The real kernel, except where told otherwise.
class ScriptedKernel : public KernelCalls {
 public:
  ResolveResult Copy(int uffd, uint64_t address, const void* source,
                     uint64_t length, bool wake) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      copies_.push_back({uffd, address, length, wake});
      if (uffd == again_for_) {
        ++agains_;
        changed_.notify_all();
        return Failed(EAGAIN);
      }
      if (uffd == fail_for_) return Failed(fail_errno_);
      if (!wake && partial_prefetch_pages_ > 0 &&
          length > partial_prefetch_pages_ * kPage) {
        // Some pages copied, then EAGAIN: as the kernel does when an event
        // comes in the middle of a long copy.
        const uint64_t done = partial_prefetch_pages_ * kPage;
        partial_prefetch_pages_ = 0;
        ResolveResult real =
            KernelCalls::Copy(uffd, address, source, done, wake);
        prefetched_ += real.bytes;
        real.kind = ResolveResult::kAgain;
        real.error = EAGAIN;
        return real;
      }
    }
    ResolveResult result =
        KernelCalls::Copy(uffd, address, source, length, wake);
    std::lock_guard<std::mutex> lock(mu_);
    if (!wake) prefetched_ += result.bytes;
    changed_.notify_all();
    return result;
  }

  int EpollWait(int epoll, epoll_event* events, int max_events,
                int timeout_ms) const override {
    // Checked on both sides: a loop already asleep fails when woken.
    if (fail_epoll_) {
      errno = EIO;
      return -1;
    }
    const int n = KernelCalls::EpollWait(epoll, events, max_events, timeout_ms);
    if (fail_epoll_) {
      errno = EIO;
      return -1;
    }
    return n;
  }

  void AgainFor(int uffd) {
    std::lock_guard<std::mutex> lock(mu_);
    again_for_ = uffd;
  }
  void FailFor(int uffd, int error) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_for_ = uffd;
    fail_errno_ = error;
  }
  void PartialPrefetch(uint64_t pages) {
    std::lock_guard<std::mutex> lock(mu_);
    partial_prefetch_pages_ = pages;
  }
  void FailEpoll() { fail_epoll_ = true; }

  // Waits until `agains` EAGAINs were answered.
  bool WaitForAgains(int agains) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kPatience,
                             [&] { return agains_ >= agains; });
  }
  // Waits until the prefetch has copied `bytes`.
  bool WaitForPrefetched(uint64_t bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kPatience,
                             [&] { return prefetched_ >= bytes; });
  }

  struct Call {
    int uffd;
    uint64_t address;
    uint64_t length;
    bool wake;
  };
  std::vector<Call> copies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return copies_;
  }

 private:
  static ResolveResult Failed(int error) {
    return ResolveResultOf(-1, error, -error, 0);
  }

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable std::vector<Call> copies_;
  mutable int agains_ = 0;
  mutable uint64_t prefetched_ = 0;
  mutable uint64_t partial_prefetch_pages_ = 0;
  int again_for_ = -1;
  int fail_for_ = -1;
  int fail_errno_ = 0;
  std::atomic<bool> fail_epoll_{false};
};

class FaultLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Random bytes, so that a page from the wrong offset shows.
    path_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/memory");
    std::string bytes(kFileBytes, '\0');
    std::mt19937_64 random(7);
    for (size_t i = 0; i < bytes.size(); i += 8) {
      const uint64_t v = random();
      std::memcpy(&bytes[i], &v, 8);
    }
    ASSERT_TRUE(WriteFileAtomically(path_, bytes, 0644).ok());
    absl::StatusOr<MemoryFile> memory = MemoryFile::Open(path_);
    ASSERT_TRUE(memory.ok()) << memory.status();
    memory_.emplace(std::move(*memory));
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<testing::FakeFirecracker> fc =
          testing::FakeFirecracker::Create(1, kVmBytes);
      if (!fc.ok()) GTEST_SKIP() << "no userfaultfd here: " << fc.status();
      vms_.push_back(std::move(*fc));
      uffds_.push_back(vms_.back().uffd());
    }
  }

  void TearDown() override {
    // Stopping closes every uffd the loop holds: any thread still faulting
    // is released (with a zero page), so the futures can finish.
    if (loop_ != nullptr) loop_->Stop();
    if (runner_.joinable()) runner_.join();
  }

  void StartLoop(const KernelCalls* kernel,
                 WorkingSetRecorder* recorder = nullptr) {
    FaultLoop::Options options;
    options.name = "fault loop 1";
    options.kernel = kernel;
    options.recorder = recorder;
    options.on_leave = [this](const ServedVm& vm, const std::string& why) {
      std::lock_guard<std::mutex> lock(mu_);
      left_.push_back(absl::StrCat("vm ", vm.id, ": ", why));
      final_stats_[vm.id] = vm.stats.ToString();
      changed_.notify_all();
    };
    options.on_file_changed = [this](const std::string& what) {
      std::lock_guard<std::mutex> lock(mu_);
      file_changed_.push_back(what);
      changed_.notify_all();
    };
    absl::StatusOr<std::unique_ptr<FaultLoop>> loop =
        FaultLoop::Create(*memory_, options);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    runner_ = std::thread([this] {
      absl::Status ran = loop_->Run();
      std::lock_guard<std::mutex> lock(mu_);
      ran_ = ran;
      ended_ = true;
      changed_.notify_all();
    });
  }

  // VM `i` (ids from 1), its uffd handed over, its memory at file offset
  // 0; with `plan`, prefetched.
  std::unique_ptr<ServedVm> Vm(int i,
                               std::shared_ptr<const PrefetchPlan> plan = {}) {
    testing::FakeFirecracker& fc = vms_[i];
    absl::StatusOr<RegionTable> table = RegionTable::Create(
        {{reinterpret_cast<uint64_t>(fc.memory()), kVmBytes, 0, kPage}});
    EXPECT_TRUE(table.ok()) << table.status();
    auto vm = std::make_unique<ServedVm>(std::move(*table));
    vm->id = i + 1;
    vm->uffd = fc.TakeUffd();
    vm->plan = std::move(plan);
    vm->connected = absl::Now();
    return vm;
  }

  void Give(int i, std::shared_ptr<const PrefetchPlan> plan = {}) {
    EXPECT_EQ(loop_->Add(Vm(i, std::move(plan))), nullptr);
  }

  // Touches pages [first, first + count) of VM `i` on a thread of its own;
  // the number of pages whose bytes are not the file's (unless `compare`
  // is false: the file may have gone).
  std::future<int> Touch(int i, uint64_t first, uint64_t count,
                         bool compare = true) {
    return std::async(std::launch::async, [this, i, first, count, compare] {
      int wrong = 0;
      for (uint64_t p = first; p < first + count; ++p) {
        const volatile uint8_t* page = vms_[i].memory() + p * kPage;
        (void)page[0];
        if (compare && std::memcmp(const_cast<const uint8_t*>(page),
                                   memory_->data() + p * kPage, kPage) != 0) {
          ++wrong;
        }
      }
      return wrong;
    });
  }

  std::vector<std::string> Left() {
    std::lock_guard<std::mutex> lock(mu_);
    return left_;
  }
  bool WaitForLeft(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kPatience,
                             [&] { return left_.size() >= count; });
  }
  // VM `i`'s stats as it left, once every VM has: the loop stopped (a
  // faulting thread runs as soon as its page is copied, before the loop
  // counts it, so the counts are read once the loop is done).
  std::string FinalStats(int i) {
    loop_->Stop();
    if (runner_.joinable()) runner_.join();
    std::lock_guard<std::mutex> lock(mu_);
    return final_stats_[i + 1];
  }

  std::string path_;
  std::optional<MemoryFile> memory_;
  ScriptedKernel kernel_;  // Outlives the loop, which calls it.
  std::vector<testing::FakeFirecracker> vms_;
  std::vector<int> uffds_;  // As the loop will know them.
  std::unique_ptr<FaultLoop> loop_;
  std::thread runner_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> left_;
  std::map<uint64_t, std::string> final_stats_;  // By VM id, as they left.
  std::vector<std::string> file_changed_;
  absl::Status ran_;
  bool ended_ = false;
};

TEST_F(FaultLoopTest, AVmWaitingOnEagainDoesNotHoldUpTheOthers) {
  ScriptedKernel& kernel = kernel_;
  kernel.AgainFor(uffds_[0]);
  StartLoop(&kernel);
  Give(0);
  Give(1);
  std::future<int> stuck = Touch(0, 0, 1);
  // Retried, each time after its own back-off...
  ASSERT_TRUE(kernel.WaitForAgains(3));
  // ...while the other VM on the same loop is served all along.
  std::future<int> other = Touch(1, 0, 64);
  ASSERT_EQ(other.wait_for(kPatience), std::future_status::ready)
      << "the other VM waited for the one meeting EAGAIN";
  EXPECT_EQ(other.get(), 0);
  EXPECT_THAT(Left(), IsEmpty());
  EXPECT_EQ(stuck.wait_for(std::chrono::milliseconds(0)),
            std::future_status::timeout);
  // The address space settles: the waiting fault is served.
  kernel.AgainFor(-1);
  ASSERT_EQ(stuck.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(stuck.get(), 0);
  EXPECT_THAT(Left(), IsEmpty());
  EXPECT_THAT(FinalStats(1), HasSubstr("faults 64 "));
  const std::string waited = FinalStats(0);
  EXPECT_THAT(waited, HasSubstr("faults 1 "));
  EXPECT_THAT(waited, Not(HasSubstr("eagain 0,")));
  EXPECT_THAT(waited, Not(HasSubstr("eagain 1,")));
  EXPECT_THAT(waited, Not(HasSubstr("eagain 2,")));
}

TEST_F(FaultLoopTest, GoneAndInvalidCopiesDropOnlyThatVm) {
  ScriptedKernel& kernel = kernel_;
  StartLoop(&kernel);
  Give(0);
  Give(1);
  Give(2);
  kernel.FailFor(uffds_[0], ESRCH);
  std::future<int> gone = Touch(0, 0, 1);
  ASSERT_TRUE(WaitForLeft(1));
  EXPECT_THAT(Left(), ElementsAre("vm 1: its address space is gone (No such "
                                  "process)"));
  kernel.FailFor(uffds_[2], EINVAL);
  std::future<int> invalid = Touch(2, 0, 1);
  ASSERT_TRUE(WaitForLeft(2));
  EXPECT_EQ(
      Left()[1],
      absl::StrCat("vm 3: UFFDIO_COPY at 0x",
                   absl::Hex(reinterpret_cast<uint64_t>(vms_[2].memory())),
                   " failed: Invalid argument"));
  // Their threads were released when their uffds closed (zero pages).
  ASSERT_EQ(gone.wait_for(kPatience), std::future_status::ready);
  ASSERT_EQ(invalid.wait_for(kPatience), std::future_status::ready);
  // The third is served as ever.
  std::future<int> fine = Touch(1, 0, 16);
  ASSERT_EQ(fine.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(fine.get(), 0);
  EXPECT_EQ(loop_->vm_count(), 1u);
}

TEST_F(FaultLoopTest, APartialPrefetchResumesWhereItStopped) {
  // A working set of pages 8 to 39, in one run of 32 pages.
  WorkingSet set;
  set.set_page_size(kPage);
  for (uint64_t p = 8; p < 40; ++p) set.add_page_offsets(p * kPage);
  auto plan = std::make_shared<const PrefetchPlan>(set, 32 * kPage);
  ASSERT_EQ(plan->runs().size(), 1u);
  ScriptedKernel& kernel = kernel_;
  kernel.PartialPrefetch(5);  // 5 pages, then EAGAIN.
  StartLoop(&kernel);
  Give(0, plan);
  ASSERT_TRUE(kernel.WaitForPrefetched(32 * kPage));
  // The copy after the EAGAIN took up at page 13, with the rest.
  std::vector<ScriptedKernel::Call> prefetches;
  for (const ScriptedKernel::Call& c : kernel.copies()) {
    if (!c.wake) prefetches.push_back(c);
  }
  const uint64_t base = reinterpret_cast<uint64_t>(vms_[0].memory());
  ASSERT_EQ(prefetches.size(), 2u);
  EXPECT_EQ(prefetches[0].address, base + 8 * kPage);
  EXPECT_EQ(prefetches[0].length, 32 * kPage);
  EXPECT_EQ(prefetches[1].address, base + 13 * kPage);
  EXPECT_EQ(prefetches[1].length, 27 * kPage);
  // Every page there, with the file's bytes, without a fault.
  unsigned char resident[40];
  ASSERT_EQ(mincore(vms_[0].memory(), 40 * kPage, resident), 0);
  for (int p = 8; p < 40; ++p) EXPECT_TRUE(resident[p] & 1) << p;
  std::future<int> check = Touch(0, 8, 32);
  ASSERT_EQ(check.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(check.get(), 0);
  // Faults outside the set are counted as its misses.
  std::future<int> miss = Touch(0, 50, 2);
  ASSERT_EQ(miss.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(miss.get(), 0);
  const std::string stats = FinalStats(0);
  EXPECT_THAT(stats, HasSubstr("faults 2 "));
  EXPECT_THAT(stats, HasSubstr("prefetched 32 pages"));
  EXPECT_THAT(stats, HasSubstr("faults in working set 0, outside 2,"));
  EXPECT_THAT(stats, HasSubstr("eagain 1,"));
}

TEST_F(FaultLoopTest, ADeadLoopSaysWhyItsVmsLeaveAndTakesNoMore) {
  ScriptedKernel& kernel = kernel_;
  StartLoop(&kernel);
  Give(0);
  std::future<int> served = Touch(0, 0, 4);
  ASSERT_EQ(served.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(served.get(), 0);
  // epoll_wait fails when the loop is next woken (by the VM handed over).
  kernel.FailEpoll();
  Give(1);
  ASSERT_TRUE(WaitForLeft(2));
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(changed_.wait_for(lock, kPatience, [&] { return ended_; }));
    EXPECT_EQ(ran_.message(), "fault loop 1: epoll_wait: Input/output error");
  }
  EXPECT_THAT(Left(), ElementsAre("vm 1: its fault loop failed: fault loop 1: "
                                  "epoll_wait: Input/output error",
                                  "vm 2: its fault loop failed: fault loop 1: "
                                  "epoll_wait: Input/output error"));
  EXPECT_TRUE(loop_->dead());
  EXPECT_EQ(loop_->vm_count(), 0u);
  // Handed back: the server gives it to another loop.
  std::unique_ptr<ServedVm> back = loop_->Add(Vm(2));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->id, 3u);
}

TEST_F(FaultLoopTest, EfaultFromAShrunkMemoryFileFreezesInsteadOfDropping) {
  StartLoop(nullptr);  // The real kernel throughout.
  Give(0);
  std::future<int> before = Touch(0, 0, 4);
  ASSERT_EQ(before.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(before.get(), 0);
  // The mapping now ends at 0: copying from it faults (EFAULT).
  ASSERT_EQ(truncate(path_.c_str(), 0), 0);
  std::future<int> after = Touch(0, 4, 1, /*compare=*/false);
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(changed_.wait_for(lock, kPatience,
                                  [&] { return !file_changed_.empty(); }));
    EXPECT_THAT(file_changed_[0], HasSubstr("size 4194304 -> 0"));
  }
  // Not "its address space is gone": the VM stays, its fault unserved
  // rather than served wrong bytes.
  EXPECT_THAT(Left(), IsEmpty());
  EXPECT_EQ(loop_->vm_count(), 1u);
  EXPECT_EQ(after.wait_for(std::chrono::milliseconds(0)),
            std::future_status::timeout);
  loop_->Stop();
  ASSERT_TRUE(WaitForLeft(1));
  EXPECT_THAT(Left(), ElementsAre("vm 1: the server is stopping"));
  ASSERT_EQ(after.wait_for(kPatience), std::future_status::ready);
}

}  // namespace
}  // namespace fcvm::uffd
