#include "base/eintr.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace fcvm {
namespace {

TEST(RetryEintrTest, RetriesOnlyEintr) {
  int calls = 0;
  int result = RetryEintr([&] {
    ++calls;
    if (calls < 3) {
      errno = EINTR;
      return -1;
    }
    return 5;
  });
  EXPECT_EQ(result, 5);
  EXPECT_EQ(calls, 3);
}

TEST(RetryEintrTest, OtherErrorsReturnAtOnce) {
  int calls = 0;
  long result = RetryEintr([&]() -> long {
    ++calls;
    errno = EAGAIN;
    return -1;
  });
  EXPECT_EQ(result, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace fcvm
