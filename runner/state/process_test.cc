#include "runner/state/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

TEST(ProcessTest, OwnStartTimeIsStable) {
  const uint64_t ticks = StartTicks(getpid());
  EXPECT_GT(ticks, 0u);
  EXPECT_EQ(StartTicks(getpid()), ticks);
  EXPECT_TRUE(SameProcessAlive(getpid(), ticks));
  EXPECT_FALSE(SameProcessAlive(getpid(), ticks + 1));  // A reused pid.
}

TEST(ProcessTest, ExitedChildIsNotAlive) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  uint64_t ticks = 0;
  for (int i = 0; i < 100 && ticks == 0; ++i) ticks = StartTicks(child);
  ASSERT_GT(ticks, 0u);
  EXPECT_TRUE(SameProcessAlive(child, ticks));
  kill(child, SIGKILL);
  // A zombie (not yet reaped) already counts as gone.
  for (int i = 0; i < 1000 && SameProcessAlive(child, ticks); ++i) usleep(1000);
  EXPECT_FALSE(SameProcessAlive(child, ticks));
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(SameProcessAlive(child, ticks));
  EXPECT_EQ(StartTicks(-1), 0u);
}

// A child that waits for SIGTERM; its start ticks once /proc shows it.
pid_t StartWaiter(uint64_t* ticks) {
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  *ticks = 0;
  while (child > 0 && *ticks == 0) *ticks = StartTicks(child);
  return child;
}

TEST(ProcessTest, ProcessRefSignalsAndWaitsThroughAPidfd) {
  uint64_t ticks = 0;
  const pid_t child = StartWaiter(&ticks);
  ASSERT_GT(child, 0);
  absl::StatusOr<std::optional<ProcessRef>> ref =
      ProcessRef::Open(child, ticks);
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_TRUE(ref->has_value());
  EXPECT_FALSE((*ref)->WaitForExit(absl::ZeroDuration()));
  ASSERT_TRUE((*ref)->Signal(SIGTERM).ok());
  EXPECT_TRUE((*ref)->WaitForExit(absl::Seconds(30)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  // Signalling a process that is gone is not an error (it just left).
  EXPECT_TRUE((*ref)->Signal(SIGTERM).ok());
}

TEST(ProcessTest, AReusedPidIsNeverOpened) {
  uint64_t ticks = 0;
  const pid_t child = StartWaiter(&ticks);
  ASSERT_GT(child, 0);
  // Our own pid with another start time: what a reused pid looks like.
  absl::StatusOr<std::optional<ProcessRef>> other =
      ProcessRef::Open(child, ticks + 1);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  EXPECT_FALSE(ProcessRef::Open(0, 5)->has_value());
  EXPECT_FALSE(ProcessRef::Open(child, 0)->has_value());
  ASSERT_TRUE(KillRecorded(child, ticks, absl::Seconds(30)).ok());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // Gone: nothing to do, and no error.
  EXPECT_TRUE(KillRecorded(child, ticks, absl::Seconds(1)).ok());
}

}  // namespace
}  // namespace fcvm::runner
