#include "runner/state/state_store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>
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

TEST_F(StateStoreTest, RoundTrip) {
  StateStore store(root_);
  VmState state = New("web-1");
  state.mutable_network()->set_tap("fcvm-web-1");
  state.add_ports()->set_host_port(8080);
  state.mutable_spec()->mutable_plan()->set_image("nginx");
  ASSERT_TRUE(store.Create(state).ok());
  EXPECT_EQ(state.dir(), root_ + "/vms/web-1");
  absl::StatusOr<VmState> read = store.Read("web-1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), state.SerializeAsString());
  struct stat st;
  ASSERT_EQ(stat((root_ + "/vms/web-1/state.pb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StateStoreTest, ASecondVmOfTheSameNameIsRefused) {
  StateStore store(root_);
  VmState a = New("web");
  ASSERT_TRUE(store.Create(a).ok());
  VmState b = New("web");
  absl::Status again = store.Create(b);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("a VM named 'web' already exists"));
  EXPECT_THAT(again.message(), HasSubstr("fcvm rm web"));
}

TEST_F(StateStoreTest, BadNamesAreRefusedWithTheRule) {
  StateStore store(root_);
  const std::vector<std::string> names = {
      "", "Web", "-x", "a/b", "..", "a b", std::string(41, 'a')};
  for (const std::string& name : names) {
    VmState state = New(name);
    absl::Status created = store.Create(state);
    EXPECT_EQ(created.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(created.message(), HasSubstr("bad VM name"));
  }
  EXPECT_EQ(store.Read("../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, ListIsSortedAndShowsBrokenEntries) {
  StateStore store(root_);
  EXPECT_TRUE(store.List()->empty());  // No root yet: no VMs.
  for (const std::string name : {"c", "a", "b"}) {
    VmState state = New(name);
    ASSERT_TRUE(store.Create(state).ok());
  }
  ASSERT_TRUE(WriteFileAtomically(root_ + "/vms/b/state.pb", "\xff\xff").ok());
  absl::StatusOr<std::vector<VmState>> all = store.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name(), "a");
  EXPECT_EQ((*all)[1].name(), "b");
  EXPECT_EQ((*all)[1].phase(), VmState::FAILED);
  EXPECT_THAT((*all)[1].error(), HasSubstr("is not a state file"));
  EXPECT_EQ((*all)[2].name(), "c");
}

TEST_F(StateStoreTest, RemoveTakesTheWholeDirectory) {
  StateStore store(root_);
  VmState state = New("gone");
  ASSERT_TRUE(store.Create(state).ok());
  ASSERT_TRUE(WriteFileAtomically(state.dir() + "/disk.ext4", "x").ok());
  ASSERT_EQ(mkdir((state.dir() + "/sub").c_str(), 0700), 0);
  ASSERT_TRUE(store.Remove("gone").ok());
  EXPECT_NE(access(state.dir().c_str(), F_OK), 0);
  EXPECT_EQ(store.Read("gone").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store.Remove("gone").message(), HasSubstr("no VM named 'gone'"));
}

// Concurrent writers in separate processes (as `stop` and the supervisor
// are) never lose an update, and a reader never sees a torn file.
TEST_F(StateStoreTest, ConcurrentUpdatesFromProcessesAreNotLost) {
  StateStore store(root_);
  VmState state = New("busy");
  ASSERT_TRUE(store.Create(state).ok());
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
  int reads = 0;
  for (bool running = true; running;) {
    absl::StatusOr<VmState> seen = store.Read("busy");
    ASSERT_TRUE(seen.ok()) << seen.status();
    ++reads;
    running = seen->exit_code() < kProcesses * kUpdates;
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(store.Read("busy")->exit_code(), kProcesses * kUpdates);
  EXPECT_GT(reads, 0);
}

}  // namespace
}  // namespace fcvm::runner
