#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace fcvm {
namespace {

// Whether `fd` is an open descriptor of this process.
bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(UniqueFdTest, DefaultIsInvalid) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(static_cast<bool>(fd));
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  int raw = ::dup(STDERR_FILENO);
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  int raw = ::dup(STDERR_FILENO);
  UniqueFd a(raw);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFdTest, MoveAssignClosesPrevious) {
  int first = ::dup(STDERR_FILENO);
  int second = ::dup(STDERR_FILENO);
  UniqueFd a(first);
  a = UniqueFd(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnership) {
  int raw = ::dup(STDERR_FILENO);
  int released;
  {
    UniqueFd fd(raw);
    released = fd.release();
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_EQ(released, raw);
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesAndAdopts) {
  int first = ::dup(STDERR_FILENO);
  int second = ::dup(STDERR_FILENO);
  UniqueFd fd(first);
  fd.reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(fd.get(), second);
  fd.reset();
  EXPECT_FALSE(IsOpen(second));
}

TEST(UniqueFdTest, CloseReportsSuccess) {
  UniqueFd fd(::dup(STDERR_FILENO));
  EXPECT_TRUE(fd.Close("dup of stderr").ok());
  EXPECT_FALSE(fd.valid());
  EXPECT_TRUE(fd.Close("again").ok());  // Nothing to close.
}

TEST(OpenFdTest, ErrorNamesPath) {
  absl::StatusOr<UniqueFd> fd = OpenFd("/nonexistent/fcvm/file", O_RDONLY);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fd.status().message(),
            "open /nonexistent/fcvm/file: No such file or directory");
}

TEST(OpenFdTest, SetsCloexec) {
  absl::StatusOr<UniqueFd> fd = OpenFd("/dev/null", O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
}

TEST(PipeTest, WriteAllThenReadAll) {
  absl::StatusOr<Pipe> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  EXPECT_TRUE(::fcntl(pipe->read.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(pipe->write.get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_TRUE(WriteAll(pipe->write.get(), "hello, fd", "pipe").ok());
  pipe->write.reset();
  absl::StatusOr<std::string> data = ReadAll(pipe->read.get(), "pipe");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, "hello, fd");
}

TEST(WriteAllTest, ErrorNamesDestination) {
  absl::StatusOr<Pipe> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  absl::Status status = WriteAll(pipe->read.get(), "x", "the read end");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);  // EBADF
  EXPECT_EQ(status.message(), "write the read end: Bad file descriptor");
}

}  // namespace
}  // namespace fcvm
