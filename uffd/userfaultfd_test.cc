#include "uffd/userfaultfd.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

// How the kernel's answers to UFFDIO_COPY / UFFDIO_ZEROPAGE are sorted:
// each kind is handled differently by the fault loop.
TEST(UserfaultfdTest, SortsTheKernelsAnswers) {
  ResolveResult r = ResolveResultOf(0, 0, 8192, 8192);
  EXPECT_EQ(r.kind, ResolveResult::kDone);
  EXPECT_EQ(r.bytes, 8192u);

  // EAGAIN after two pages of four: the two stay copied.
  r = ResolveResultOf(-1, EAGAIN, 8192, 16384);
  EXPECT_EQ(r.kind, ResolveResult::kAgain);
  EXPECT_EQ(r.bytes, 8192u);
  EXPECT_EQ(r.error, EAGAIN);
  // Nothing done: the kernel puts -errno in the count.
  r = ResolveResultOf(-1, EAGAIN, -EAGAIN, 4096);
  EXPECT_EQ(r.kind, ResolveResult::kAgain);
  EXPECT_EQ(r.bytes, 0u);

  r = ResolveResultOf(-1, EEXIST, 4096, 8192);
  EXPECT_EQ(r.kind, ResolveResult::kExists);
  EXPECT_EQ(r.bytes, 4096u);

  for (int gone : {ESRCH, EFAULT}) {
    r = ResolveResultOf(-1, gone, -gone, 4096);
    EXPECT_EQ(r.kind, ResolveResult::kGone) << gone;
    EXPECT_EQ(r.error, gone);
  }
  for (int invalid : {EINVAL, ENOENT, ENOMEM}) {
    r = ResolveResultOf(-1, invalid, -invalid, 4096);
    EXPECT_EQ(r.kind, ResolveResult::kInvalid) << invalid;
  }
  // A count past the length is not believed.
  r = ResolveResultOf(-1, EAGAIN, 1 << 20, 4096);
  EXPECT_EQ(r.bytes, 4096u);
}

}  // namespace
}  // namespace fcvm::uffd
