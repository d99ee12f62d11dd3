#include "runner/state/lease.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/vm", ++counter);
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  }
  std::string dir_;
};

TEST_F(LeaseTest, HeldWhileItsOwnerLivesAndFreeAfter) {
  EXPECT_FALSE(Lease::Held(dir_));  // No lease file: nobody.
  EXPECT_EQ(Lease::TryTake(dir_).status().code(), absl::StatusCode::kNotFound);
  {
    absl::StatusOr<Lease> lease = Lease::Create(dir_);
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_TRUE(Lease::Held(dir_));
    absl::StatusOr<std::optional<Lease>> other = Lease::TryTake(dir_);
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_FALSE(other->has_value());
    // Probing did not take it away.
    EXPECT_TRUE(Lease::Held(dir_));
    EXPECT_EQ(Lease::Create(dir_).status().code(),
              absl::StatusCode::kAlreadyExists);
  }
  EXPECT_FALSE(Lease::Held(dir_));
  absl::StatusOr<std::optional<Lease>> taken = Lease::TryTake(dir_);
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE(taken->has_value());
  EXPECT_TRUE(Lease::Held(dir_));
}

// The detached supervisor: the lease passes to a child across fork and
// stays held after the parent lets go, until the child ends (killed here,
// so nobody cleans up: the kernel releases it).
TEST_F(LeaseTest, PassesAcrossForkAndEndsWithTheLastHolder) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child;
  {
    absl::StatusOr<Lease> lease = Lease::Create(dir_);
    ASSERT_TRUE(lease.ok()) << lease.status();
    child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(ready[0]);
      (void)!write(ready[1], "x", 1);
      pause();
      _exit(0);
    }
  }  // The parent's copy closes here.
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  EXPECT_TRUE(Lease::Held(dir_));
  EXPECT_EQ(Lease::Take(dir_, 50).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  absl::StatusOr<Lease> mine = Lease::Take(dir_, 10000);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->dir(), dir_);
}

// A process the owner starts never holds the lease (close-on-exec), so a
// VMM that outlives its supervisor does not pass for one.
TEST_F(LeaseTest, NotInheritedAcrossExec) {
  absl::StatusOr<Lease> lease = Lease::Create(dir_);
  ASSERT_TRUE(lease.ok()) << lease.status();
  const int flags = fcntl(lease->fd(), F_GETFD);
  EXPECT_NE(flags & FD_CLOEXEC, 0);
}

}  // namespace
}  // namespace fcvm::runner
