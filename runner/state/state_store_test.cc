#include "runner/state/state_store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/state", ++counter);
  }
  VmState New(const std::string& name) {
    VmState state;
    state.set_name(name);
    state.set_phase(VmState::CREATING);
    state.set_image("nginx");
    return state;
  }
  std::string root_;
};

TEST_F(StateStoreTest, CreateWritesTheStateOnceAndHoldsTheLease) {
  StateStore store(root_);
  VmState state = New("web-1");
  state.mutable_network()->set_tap("fc-0123abcd");
  state.add_ports()->set_host_port(8080);
  state.mutable_spec()->mutable_plan()->set_image("nginx");
  absl::StatusOr<Lease> lease = store.Create(state);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(state.dir(), root_ + "/vms/web-1");
  EXPECT_EQ(lease->dir(), state.dir());
  EXPECT_TRUE(Lease::Held(state.dir()));
  absl::StatusOr<VmState> read = store.Read("web-1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), state.SerializeAsString());
  struct stat st;
  ASSERT_EQ(stat((root_ + "/vms/web-1/state.pb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // No claim directory is left behind.
  absl::StatusOr<std::vector<StoreEntry>> all = store.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(root_ + "/vms")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(StateStoreTest, ASecondVmOfTheSameNameIsRefusedAndLeavesNothing) {
  StateStore store(root_);
  VmState a = New("web");
  absl::StatusOr<Lease> first = store.Create(a);
  ASSERT_TRUE(first.ok());
  VmState b = New("web");
  b.set_image("other");
  absl::StatusOr<Lease> again = store.Create(b);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(),
              HasSubstr("a VM named 'web' already exists"));
  EXPECT_THAT(again.status().message(), HasSubstr("fcvm rm web"));
  EXPECT_EQ(store.Read("web")->image(), "nginx");  // The first one's.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(root_ + "/vms")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "the refused claim left a directory";
}

TEST_F(StateStoreTest, BadNamesAreRefusedWithTheRule) {
  StateStore store(root_);
  // The agent's hostname rule: no '_', no trailing '-' (these used to boot
  // and fail in the guest).
  const std::vector<std::string> names = {
      "",     "Web",   "-x",
      "web-", "my_vm", "a/b",
      "..",   "a b",   std::string(41, 'a')};
  for (const std::string& name : names) {
    VmState state = New(name);
    absl::StatusOr<Lease> created = store.Create(state);
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_THAT(created.status().message(), HasSubstr("bad VM name"));
  }
  EXPECT_TRUE(ValidateVmName("a").ok());
  EXPECT_TRUE(ValidateVmName("nginx-3e09").ok());
  EXPECT_EQ(store.Read("../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, ListIsSortedAndShowsBrokenEntriesWithTheReason) {
  StateStore store(root_);
  EXPECT_TRUE(store.List()->empty());  // No root yet: no VMs.
  std::vector<Lease> leases;
  for (const std::string name : {"c", "a", "b"}) {
    VmState state = New(name);
    absl::StatusOr<Lease> lease = store.Create(state);
    ASSERT_TRUE(lease.ok());
    leases.push_back(std::move(*lease));
  }
  ASSERT_TRUE(WriteFileAtomically(root_ + "/vms/b/state.pb", "\xff\xff").ok());
  ASSERT_EQ(mkdir((root_ + "/vms/.claim-x").c_str(), 0700), 0);
  absl::StatusOr<std::vector<StoreEntry>> all = store.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "a");
  EXPECT_TRUE((*all)[0].state.ok());
  EXPECT_EQ((*all)[1].name, "b");
  EXPECT_EQ((*all)[1].state.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT((*all)[1].state.status().message(),
              HasSubstr("is not a state file"));
  EXPECT_EQ((*all)[2].name, "c");
}

TEST_F(StateStoreTest, OnlyTheOwnerRemovesAndQuarantines) {
  StateStore store(root_);
  VmState state = New("gone");
  absl::StatusOr<Lease> lease = store.Create(state);
  ASSERT_TRUE(lease.ok());
  VmState other = New("other");
  absl::StatusOr<Lease> other_lease = store.Create(other);
  ASSERT_TRUE(other_lease.ok());
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/disk.img", "x").ok());
  ASSERT_EQ(mkdir((state.dir() + "/sub").c_str(), 0700), 0);
  EXPECT_EQ(store.Remove("gone", *other_lease).code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(access(state.dir().c_str(), F_OK), 0);
  ASSERT_TRUE(store.Remove("gone", *lease).ok());
  EXPECT_NE(access(state.dir().c_str(), F_OK), 0);
  EXPECT_EQ(store.Read("gone").status().code(), absl::StatusCode::kNotFound);
  // Updates after removal do not bring files back.
  EXPECT_EQ(store.Update("gone", [](VmState&) {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_NE(access(state.dir().c_str(), F_OK), 0);

  absl::StatusOr<std::string> moved = store.Quarantine("other", *other_lease);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, HasSubstr(root_ + "/quarantine/other."));
  EXPECT_EQ(access((*moved + "/state.pb").c_str(), F_OK), 0);
  EXPECT_TRUE(store.List()->empty());
}

TEST_F(StateStoreTest, ARootOthersCanReachIsRefused) {
  // Mode: group and others must have no access.
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
  StateStore store(root_);
  VmState state = New("web");
  absl::StatusOr<Lease> created = store.Create(state);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(created.status().message(), HasSubstr("its mode is 0755"));
  EXPECT_EQ(store.List().status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store.Read("web").status().code(),
            absl::StatusCode::kPermissionDenied);

  // A symlink (to a directory of ours, even) is refused.
  const std::string real = root_ + "-real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  const std::string link = root_ + "-link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  EXPECT_THAT(StateStore(link).List().status().message(),
              HasSubstr("it is a symlink"));

  // Another user's directory (only root can make one here).
  if (geteuid() == 0) {
    const std::string theirs = root_ + "-theirs";
    ASSERT_EQ(mkdir(theirs.c_str(), 0700), 0);
    ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
    absl::Status refused = EnsurePrivateDir(theirs);
    EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(refused.message(), HasSubstr("belongs to uid 65534"));
  }
}

// Concurrent writers in separate processes never lose an update, and a
// reader never sees a torn file.
TEST_F(StateStoreTest, ConcurrentUpdatesFromProcessesAreNotLost) {
  StateStore store(root_);
  VmState state = New("busy");
  absl::StatusOr<Lease> lease = store.Create(state);
  ASSERT_TRUE(lease.ok());
  constexpr int kProcesses = 4;
  constexpr int kUpdates = 50;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      StateStore mine(root_);
      for (int i = 0; i < kUpdates; ++i) {
        if (!mine.Update("busy",
                         [](VmState& s) { s.set_exit_code(s.exit_code() + 1); })
                 .ok()) {
          _exit(1);
        }
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  // Read while they write, until every child has exited (a failed child
  // ends the loop too, instead of hanging it).
  int reads_while_writing = 0, running = kProcesses;
  std::vector<int> statuses;
  while (running > 0) {
    absl::StatusOr<VmState> seen = store.Read("busy");
    ASSERT_TRUE(seen.ok()) << seen.status();
    ASSERT_LE(seen->exit_code(), kProcesses * kUpdates);
    ++reads_while_writing;
    int status = 0;
    const pid_t done = waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --running;
      statuses.push_back(status);
    }
  }
  for (int status : statuses) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(store.Read("busy")->exit_code(), kProcesses * kUpdates);
  std::cout << reads_while_writing << " reads while writing\n";
}

}  // namespace
}  // namespace fcvm::runner
