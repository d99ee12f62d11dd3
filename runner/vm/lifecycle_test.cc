// stop, rm, gc and ls as libraries, against owners that are real processes
// holding a real lease (forked here), and leftover "VMMs" that are real
// processes recorded by pid and start time.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/state/lease.h"
#include "runner/state/process.h"
#include "runner/state/state_store.h"
#include "runner/vm/gc.h"
#include "runner/vm/listing.h"
#include "runner/vm/remove.h"
#include "runner/vm/stop.h"

namespace fcvm::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

enum class Owner {
  kGraceful,      // Records itself; on SIGTERM writes EXITED and exits.
  kStubborn,      // Records itself; ignores SIGTERM.
  kStillCreating  // Holds the lease, has not recorded a supervisor yet.
};

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/store", ++counter);
    store_.emplace(root_);
  }
  void TearDown() override {
    for (pid_t pid : children_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  VmState New(const std::string& name, VmState::Phase phase) {
    VmState state;
    state.set_name(name);
    state.set_id("00000000000000aa");
    state.set_phase(phase);
    state.mutable_network()->set_mode("user");
    return state;
  }
  // Creates the VM and hands its lease to a forked owner that behaves as
  // told; returns once the owner is in place.
  pid_t StartOwner(VmState state, Owner behaviour) {
    absl::StatusOr<Lease> lease = store_->Create(state);
    EXPECT_TRUE(lease.ok()) << lease.status();
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    const pid_t child = fork();
    if (child == 0) {
      close(ready[0]);
      StateStore mine(root_);
      if (behaviour == Owner::kStubborn) signal(SIGTERM, SIG_IGN);
      if (behaviour == Owner::kGraceful) sigprocmask(SIG_BLOCK, &term, nullptr);
      if (behaviour != Owner::kStillCreating) {
        const uint64_t ticks = StartTicks(getpid());
        if (!mine.Update(state.name(),
                         [&](VmState& s) {
                           s.set_supervisor_pid(getpid());
                           s.set_supervisor_start_ticks(ticks);
                         })
                 .ok()) {
          _exit(3);
        }
      }
      (void)!write(ready[1], "x", 1);
      if (behaviour == Owner::kGraceful) {
        int signal = 0;
        sigwait(&term, &signal);
        (void)mine.Update(state.name(), [](VmState& s) {
          s.set_phase(VmState::EXITED);
          s.set_supervisor_pid(0);
        });
        _exit(0);
      }
      for (;;) pause();
    }
    close(ready[1]);
    char c;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    children_.push_back(child);
    return child;
  }
  // A process standing in for a VMM its killed supervisor left running.
  std::pair<pid_t, uint64_t> StartLeftoverVmm() {
    const pid_t child = fork();
    if (child == 0) {
      for (;;) pause();
    }
    children_.push_back(child);
    uint64_t ticks = 0;
    while (ticks == 0) ticks = StartTicks(child);
    return {child, ticks};
  }
  // A VM whose owner is gone, with a VMM left running.
  std::pair<pid_t, uint64_t> Orphan(const std::string& name) {
    VmState state = New(name, VmState::RUNNING);
    const auto vmm = StartLeftoverVmm();
    state.set_vmm_pid(vmm.first);
    state.set_vmm_start_ticks(vmm.second);
    absl::StatusOr<Lease> lease = store_->Create(state);
    EXPECT_TRUE(lease.ok());
    EXPECT_TRUE(WriteFileAtomically(state.dir() + "/disk.img", "disk").ok());
    return vmm;  // The lease goes here: its owner is dead.
  }
  void Reap(pid_t pid) {
    waitpid(pid, nullptr, 0);
    children_.erase(std::remove(children_.begin(), children_.end(), pid),
                    children_.end());
  }

  std::string root_;
  std::optional<StateStore> store_;
  std::vector<pid_t> children_;
};

TEST_F(LifecycleTest, StopAsksTheOwnerAndWaitsForItsEnd) {
  const pid_t owner =
      StartOwner(New("web", VmState::RUNNING), Owner::kGraceful);
  absl::StatusOr<StopResult> stopped =
      StopVm(*store_, "web", absl::Seconds(30));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->was_running);
  EXPECT_FALSE(stopped->killed);
  EXPECT_EQ(store_->Read("web")->phase(), VmState::EXITED);
  int status = 0;
  ASSERT_EQ(waitpid(owner, &status, 0), owner);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(LifecycleTest, StopKillsAnOwnerThatWillNotGo) {
  const pid_t owner =
      StartOwner(New("web", VmState::RUNNING), Owner::kStubborn);
  absl::StatusOr<StopResult> stopped =
      StopVm(*store_, "web", absl::Milliseconds(200));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->killed);
  int status = 0;
  ASSERT_EQ(waitpid(owner, &status, 0), owner);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // It never wrote its end: whoever took the lease did.
  absl::StatusOr<VmState> after = store_->Read("web");
  EXPECT_EQ(after->phase(), VmState::FAILED);
  EXPECT_THAT(after->error(), HasSubstr("its supervisor was gone"));
}

TEST_F(LifecycleTest, StopOfAVmWithoutOwnerEndsTheVmmItLeft) {
  const auto vmm = Orphan("web");
  absl::StatusOr<StopResult> stopped = StopVm(*store_, "web", absl::Seconds(5));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_FALSE(stopped->was_running);
  EXPECT_TRUE(stopped->cleanup.ended_vmm);
  EXPECT_FALSE(SameProcessAlive(vmm.first, vmm.second));
  EXPECT_EQ(store_->Read("web")->vmm_pid(), 0);
  EXPECT_EQ(StopVm(*store_, "nope", absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LifecycleTest, StopWaitsForAVmStillBeingCreated) {
  StartOwner(New("new", VmState::CREATING), Owner::kStillCreating);
  absl::StatusOr<StopResult> stopped = StopVm(*store_, "new", absl::Seconds(1));
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stopped.status().message(), HasSubstr("is being created"));
}

TEST_F(LifecycleTest, RmRefusesARunningVmAndForceStopsIt) {
  StartOwner(New("web", VmState::RUNNING), Owner::kGraceful);
  const std::string dir = store_->VmDir("web");
  absl::StatusOr<RemoveResult> refused = RemoveVm(*store_, "web", false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("is running"));
  EXPECT_EQ(access(dir.c_str(), F_OK), 0);
  absl::StatusOr<RemoveResult> forced = RemoveVm(*store_, "web", true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_TRUE(forced->stopped);
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
  EXPECT_EQ(RemoveVm(*store_, "web", false).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LifecycleTest, RmQuarantinesAVmWhoseStateCannotBeRead) {
  VmState state = New("bad", VmState::RUNNING);
  { ASSERT_TRUE(store_->Create(state).ok()); }
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/state.pb", "\xff\xff").ok());
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/disk.img", "disk").ok());
  absl::StatusOr<RemoveResult> removed = RemoveVm(*store_, "bad", false);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(removed->quarantined, StartsWith(root_ + "/quarantine/bad."));
  EXPECT_EQ(*ReadFile(removed->quarantined + "/disk.img"), "disk");
}

// The race gc used to lose: between `run` claiming the name and its
// supervisor starting, nothing recorded a live process, and gc deleted the
// VM (disk and all) under `run`'s feet. The lease says its owner lives.
TEST_F(LifecycleTest, GcLeavesAVmThatIsStillBeingCreated) {
  StartOwner(New("new", VmState::CREATING), Owner::kStillCreating);
  ASSERT_TRUE(
      WriteFileAtomically(store_->VmDir("new") + "/disk.img", "d").ok());
  absl::StatusOr<GcReport> report = CollectGarbage(*store_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->done, IsEmpty());
  EXPECT_THAT(report->errors, IsEmpty());
  EXPECT_EQ(*ReadFile(store_->VmDir("new") + "/disk.img"), "d");
  absl::StatusOr<std::vector<ListedVm>> listed = ListVms(*store_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(StatusText((*listed)[0]), "creating");
}

TEST_F(LifecycleTest, GcRemovesWhatADeadOwnerLeftAndLeavesTheRest) {
  const auto vmm = Orphan("dead");
  StartOwner(New("alive", VmState::RUNNING), Owner::kGraceful);
  VmState ended = New("ended", VmState::EXITED);
  { ASSERT_TRUE(store_->Create(ended).ok()); }

  absl::StatusOr<std::vector<ListedVm>> listed = ListVms(*store_);
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> statuses;
  for (const ListedVm& vm : *listed) statuses.push_back(StatusText(vm));
  EXPECT_THAT(statuses, ElementsAre("running", "dead (fcvm gc)", "exited (0)"));

  absl::StatusOr<GcReport> report = CollectGarbage(*store_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->errors, IsEmpty());
  ASSERT_EQ(report->done.size(), 1u);
  EXPECT_EQ(report->done[0],
            absl::StrCat("removed dead: VMM pid ", vmm.first,
                         ", state, disk, sockets and logs (RUNNING)"));
  EXPECT_FALSE(SameProcessAlive(vmm.first, vmm.second));
  EXPECT_NE(access(store_->VmDir("dead").c_str(), F_OK), 0);
  EXPECT_EQ(store_->Read("alive")->phase(), VmState::RUNNING);
  EXPECT_EQ(store_->Read("ended")->phase(), VmState::EXITED);
}

// A state nobody can read names no VMM and no disk owner: its directory is
// moved aside, never deleted.
TEST_F(LifecycleTest, GcQuarantinesAnUnreadableStateInsteadOfDeletingIt) {
  VmState state = New("bad", VmState::RUNNING);
  { ASSERT_TRUE(store_->Create(state).ok()); }
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/state.pb", "\xff").ok());
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/disk.img", "data").ok());
  absl::StatusOr<GcReport> report = CollectGarbage(*store_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->done.size(), 1u);
  EXPECT_THAT(report->done[0], StartsWith("quarantined bad (VM 'bad': "));
  EXPECT_THAT(report->done[0],
              HasSubstr("moved to " + root_ + "/quarantine/bad."));
  EXPECT_TRUE(store_->List()->empty());
  int kept = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(root_ + "/quarantine")) {
    EXPECT_EQ(*ReadFile(entry.path().string() + "/disk.img"), "data");
    ++kept;
  }
  EXPECT_EQ(kept, 1);
}

TEST_F(LifecycleTest, GcTouchesNothingItDidNotMake) {
  ASSERT_TRUE(EnsurePrivateDir(root_).ok());
  ASSERT_TRUE(EnsurePrivateDir(root_ + "/vms").ok());
  ASSERT_EQ(mkdir((root_ + "/vms/handmade").c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(root_ + "/vms/handmade/disk.img", "x").ok());
  absl::StatusOr<GcReport> report = CollectGarbage(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(report->done, IsEmpty());
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_THAT(report->errors[0], StartsWith("handmade: "));
  EXPECT_EQ(*ReadFile(root_ + "/vms/handmade/disk.img"), "x");
}

TEST(DecideGcTest, EveryCase) {
  StoreEntry running{"a", "/d/a", VmState()};
  running.state->set_phase(VmState::RUNNING);
  StoreEntry paused = running;
  paused.state->set_phase(VmState::PAUSED);
  StoreEntry exited = running;
  exited.state->set_phase(VmState::EXITED);
  StoreEntry broken{"b", "/d/b", absl::DataLossError("torn")};
  EXPECT_EQ(DecideGc(running, true), GcAction::kLeave);
  EXPECT_EQ(DecideGc(broken, true), GcAction::kLeave);
  EXPECT_EQ(DecideGc(running, false), GcAction::kCleanAndRemove);
  EXPECT_EQ(DecideGc(paused, false), GcAction::kCleanAndRemove);
  EXPECT_EQ(DecideGc(exited, false), GcAction::kLeaveForRm);
  EXPECT_EQ(DecideGc(broken, false), GcAction::kQuarantine);
  EXPECT_EQ(StatusText({broken, false}), "unreadable (fcvm gc)");
  EXPECT_EQ(StatusText({paused, true}), "paused");
}

}  // namespace
}  // namespace fcvm::runner
