#include "runner/vm/detach.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fcvm::runner {
namespace {

std::string Dir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  mkdir(dir.c_str(), 0700);
  return dir;
}

// A caller that starts several (clone --count N) holds each one's report
// pipe; a later child must not keep the earlier ones open for its life.
TEST(DetachTest, AChildKeepsNoneOfItsCallersOtherDescriptors) {
  const std::string one = Dir("one"), two = Dir("two");
  absl::StatusOr<Lease> lease1 = Lease::Create(one);
  ASSERT_TRUE(lease1.ok()) << lease1.status();
  auto ready_at_once = [](Lease, SuperviseOptions& options) {
    options.on_ready(VmState());
    return 0;
  };
  absl::StatusOr<DetachedStart> first = StartDetached(
      std::move(*lease1), one + "/supervisor.log", ready_at_once, {});
  ASSERT_TRUE(first.ok()) << first.status();
  const int inherited = first->report.get();
  absl::StatusOr<Lease> lease2 = Lease::Create(two);
  ASSERT_TRUE(lease2.ok());
  const int lease_fd = lease2->fd();
  auto check = [inherited, lease_fd](Lease lease, SuperviseOptions& options) {
    if (fcntl(inherited, F_GETFD) != -1) {
      options.on_failed("the first child's report pipe is open here");
    } else if (lease.fd() != lease_fd || fcntl(lease_fd, F_GETFD) == -1) {
      options.on_failed("the lease is not held here");
    } else {
      options.on_ready(VmState());
    }
    return 0;
  };
  absl::StatusOr<DetachedStart> second =
      StartDetached(std::move(*lease2), two + "/supervisor.log", check, {});
  ASSERT_TRUE(second.ok()) << second.status();
  const DetachedOutcome outcome = AwaitDetached(*second, absl::Seconds(30));
  EXPECT_TRUE(outcome.ready) << outcome.error;
  EXPECT_TRUE(AwaitDetached(*first, absl::Seconds(30)).ready);
  // The second one's lease is held by nobody now: the child has exited.
}

}  // namespace
}  // namespace fcvm::runner
