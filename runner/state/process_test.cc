#include "runner/state/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace fcvm::runner
