// The server in-process, its fault loops' epoll_wait failing on cue: a
// dead loop is given no VM, its VMs' departure is logged, and when every
// loop is dead Run() fails saying so. The VMs are real userfaultfd clients
// in this process (FakeFirecracker), touched from threads.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "uffd/kernel_calls.h"
#include "uffd/server.h"
#include "uffd/testing/fake_firecracker.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kVmBytes = 1 << 20;
constexpr auto kPatience = std::chrono::seconds(30);

// The real kernel, but the first loop to wait dies at once, and every loop
// once told.
class DoomingKernel : public KernelCalls {
 public:
  int EpollWait(int epoll, epoll_event* events, int max_events,
                int timeout_ms) const override {
    int none = -1;
    doomed_.compare_exchange_strong(none, epoll);
    if (Doomed(epoll)) {
      errno = EIO;
      return -1;
    }
    const int n = KernelCalls::EpollWait(epoll, events, max_events, timeout_ms);
    if (Doomed(epoll)) {
      errno = EIO;
      return -1;
    }
    return n;
  }
  void DoomAll() { all_ = true; }

 private:
  bool Doomed(int epoll) const { return epoll == doomed_ || all_; }

  mutable std::atomic<int> doomed_{-1};
  std::atomic<bool> all_{false};
};

class ServerLibTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fcvm-uffd-lib-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    std::string bytes(4 << 20, '\0');
    std::mt19937_64 random(3);
    for (size_t i = 0; i < bytes.size(); i += 8) {
      const uint64_t v = random();
      std::memcpy(&bytes[i], &v, 8);
    }
    file_ = bytes;
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/memory", bytes, 0644).ok());
    absl::StatusOr<testing::FakeFirecracker> probe =
        testing::FakeFirecracker::Create(1, kPage);
    if (!probe.ok()) GTEST_SKIP() << "no userfaultfd here: " << probe.status();
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    if (run_.valid()) (void)run_.wait_for(kPatience);
    server_.reset();
    unlink((dir_ + "/memory").c_str());
    rmdir(dir_.c_str());
  }

  void Start(const KernelCalls* kernel) {
    ServerOptions options;
    options.memory_file = dir_ + "/memory";
    options.socket_path = dir_ + "/uffd.sock";
    options.threads = 2;
    options.record_window = absl::ZeroDuration();
    options.kernel = kernel;
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(line);
      changed_.notify_all();
    };
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    run_ = std::async(std::launch::async, [this] { return server_->Run(); });
  }

  // Lines holding `text`, once there are at least `count` of them.
  std::vector<std::string> WaitForLines(const std::string& text,
                                        size_t count = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<std::string> found;
    changed_.wait_for(lock, kPatience, [&] {
      found.clear();
      for (const std::string& line : log_) {
        if (absl::StrContains(line, text)) found.push_back(line);
      }
      return found.size() >= count;
    });
    return found;
  }
  std::string Log() {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrJoin(log_, "\n");
  }

  // A VM connected, its handshake sent (the socket kept, as Firecracker
  // 1.12+ does).
  struct Vm {
    testing::FakeFirecracker fc;
    UniqueFd connection;
  };
  Vm Connect() {
    absl::StatusOr<testing::FakeFirecracker> fc =
        testing::FakeFirecracker::Create(1, kVmBytes);
    EXPECT_TRUE(fc.ok()) << fc.status();
    absl::StatusOr<UniqueFd> connection = fc->Connect(dir_ + "/uffd.sock");
    EXPECT_TRUE(connection.ok()) << connection.status();
    EXPECT_TRUE(testing::FakeFirecracker::Send(
                    connection->get(), fc->Handshake("1.12"), {fc->uffd()})
                    .ok());
    return Vm{std::move(*fc), std::move(*connection)};
  }

  // Pages of `vm` whose bytes are not the file's, touched on a thread.
  std::future<int> Touch(const Vm& vm, uint64_t pages) {
    return std::async(std::launch::async, [this, &vm, pages] {
      int wrong = 0;
      for (uint64_t p = 0; p < pages; ++p) {
        const volatile uint8_t* page = vm.fc.memory() + p * kPage;
        (void)page[0];
        if (std::memcmp(const_cast<const uint8_t*>(page),
                        file_.data() + p * kPage, kPage) != 0) {
          ++wrong;
        }
      }
      return wrong;
    });
  }

  std::string dir_, file_;
  DoomingKernel kernel_;  // Outlives the server, whose loops call it.
  std::unique_ptr<Server> server_;
  std::future<absl::Status> run_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> log_;
};

TEST_F(ServerLibTest, ADeadLoopIsGivenNoVmAndAllDeadFailsLoudly) {
  DoomingKernel& kernel = kernel_;
  Start(&kernel);
  const std::vector<std::string> died = WaitForLines(" died (");
  ASSERT_EQ(died.size(), 1u) << Log();
  // "fault loop K of 2 died (fault loop K: epoll_wait: ...)".
  const bool first_died = absl::StartsWith(died[0], "fault loop 1 of 2");
  EXPECT_EQ(died[0],
            absl::StrCat("fault loop ", first_died ? 1 : 2,
                         " of 2 died (fault "
                         "loop ",
                         first_died ? 1 : 2,
                         ": epoll_wait: Input/output error): it is given no "
                         "more VMs"));
  const std::string alive = absl::StrCat(", fault loop ", first_died ? 2 : 1);

  // The dead loop has no VM, so it would be the least busy: every VM goes
  // to the other, and is served.
  std::vector<Vm> vms;
  for (int i = 0; i < 3; ++i) vms.push_back(Connect());
  const std::vector<std::string> given = WaitForLines("region(s)", 3);
  ASSERT_EQ(given.size(), 3u) << Log();
  for (const std::string& line : given) EXPECT_THAT(line, HasSubstr(alive));
  for (const Vm& vm : vms) {
    std::future<int> touched = Touch(vm, 16);
    ASSERT_EQ(touched.wait_for(kPatience), std::future_status::ready);
    EXPECT_EQ(touched.get(), 0);
  }
  EXPECT_EQ(server_->vm_count(), 3u);

  // The last loop dies when the next VM wakes it: every VM's departure is
  // logged, and the server stops with the reason.
  kernel.DoomAll();
  vms.push_back(Connect());
  ASSERT_EQ(run_.wait_for(kPatience), std::future_status::ready) << Log();
  const absl::Status ran = run_.get();
  EXPECT_TRUE(absl::IsInternal(ran)) << ran;
  EXPECT_THAT(ran.message(),
              HasSubstr("memory server: every fault loop has died, no VM can "
                        "be served (fault loop "));
  // The server has stopped, so its log is complete. The fourth VM is given
  // to the loop only if the handover wins the race with the loop's death
  // (which any wake-up may bring): three or four VMs were given, and every
  // one given is logged as having left.
  const size_t given_in_all = WaitForLines("region(s)", 3).size();
  EXPECT_THAT(given_in_all, ::testing::AnyOf(3u, 4u)) << Log();
  EXPECT_EQ(
      WaitForLines("left (its fault loop failed: fault loop ", given_in_all)
          .size(),
      given_in_all)
      << Log();
  EXPECT_EQ(WaitForLines(" died (", 2).size(), 2u);
  EXPECT_EQ(server_->vm_count(), 0u);
}

}  // namespace
}  // namespace fcvm::uffd
