#include "runner/exec/terminal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace fcvm::runner::exec {
namespace {

// A pseudo-terminal pair: the slave stands for the user's terminal.
struct Pty {
  UniqueFd master, slave;
};

Pty OpenPty() {
  Pty pty;
  pty.master.reset(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  EXPECT_TRUE(pty.master);
  EXPECT_EQ(grantpt(pty.master.get()), 0);
  EXPECT_EQ(unlockpt(pty.master.get()), 0);
  pty.slave.reset(
      open(ptsname(pty.master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  EXPECT_TRUE(pty.slave);
  return pty;
}

termios Modes(int fd) {
  termios modes = {};
  EXPECT_EQ(tcgetattr(fd, &modes), 0);
  return modes;
}

void ExpectSameModes(const termios& a, const termios& b) {
  EXPECT_EQ(a.c_iflag, b.c_iflag);
  EXPECT_EQ(a.c_oflag, b.c_oflag);
  EXPECT_EQ(a.c_cflag, b.c_cflag);
  EXPECT_EQ(a.c_lflag, b.c_lflag);
  EXPECT_EQ(std::memcmp(a.c_cc, b.c_cc, sizeof(a.c_cc)), 0);
}

void ExpectRaw(const termios& modes) {
  EXPECT_EQ(modes.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0u);
  EXPECT_EQ(modes.c_iflag & (ICRNL | IXON | BRKINT | ISTRIP), 0u);
  EXPECT_EQ(modes.c_oflag & OPOST, 0u);
  EXPECT_EQ(modes.c_cflag & CSIZE, static_cast<tcflag_t>(CS8));
  EXPECT_EQ(modes.c_cc[VMIN], 1);
  EXPECT_EQ(modes.c_cc[VTIME], 0);
}

TEST(RawTerminalTest, SetsRawModeAndRestoresTheModesItFound) {
  Pty pty = OpenPty();
  // Cooked, with echo: what a shell leaves.
  const termios before = Modes(pty.slave.get());
  ASSERT_NE(before.c_lflag & ICANON, 0u);
  ASSERT_NE(before.c_lflag & ECHO, 0u);
  {
    absl::StatusOr<std::unique_ptr<RawTerminal>> raw =
        RawTerminal::Enter(pty.slave.get());
    ASSERT_TRUE(raw.ok()) << raw.status();
    ExpectRaw(Modes(pty.slave.get()));
    // One at a time: the signal handlers know one terminal.
    EXPECT_EQ(RawTerminal::Enter(pty.slave.get()).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  ExpectSameModes(Modes(pty.slave.get()), before);
  // And again, now that the first is gone.
  EXPECT_TRUE(RawTerminal::Enter(pty.slave.get()).ok());
  ExpectSameModes(Modes(pty.slave.get()), before);
}

TEST(RawTerminalTest, RefusesWhatIsNotATerminal) {
  absl::StatusOr<Pipe> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  absl::StatusOr<std::unique_ptr<RawTerminal>> raw =
      RawTerminal::Enter(pipe->read.get());
  EXPECT_EQ(raw.status().code(), absl::StatusCode::kFailedPrecondition);
}

class RawTerminalSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(RawTerminalSignalTest, RestoresTheTerminalThenDiesOfTheSignal) {
  const int signo = GetParam();
  Pty pty = OpenPty();
  const termios before = Modes(pty.slave.get());
  absl::StatusOr<Pipe> ready = MakePipe();
  ASSERT_TRUE(ready.ok());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<RawTerminal>> raw =
        RawTerminal::Enter(pty.slave.get());
    if (!raw.ok()) _exit(10);
    if (write(ready->write.get(), "r", 1) != 1) _exit(11);
    for (;;) pause();  // Until the signal: it must not return.
  }
  ready->write.reset();
  char byte = 0;
  ASSERT_EQ(read(ready->read.get(), &byte, 1), 1);
  ExpectRaw(Modes(pty.slave.get()));  // The child's raw mode, seen here.
  ASSERT_EQ(kill(child, signo), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), signo);
  ExpectSameModes(Modes(pty.slave.get()), before);
}

INSTANTIATE_TEST_SUITE_P(FatalSignals, RawTerminalSignalTest,
                         ::testing::Values(SIGTERM, SIGHUP, SIGINT, SIGQUIT));

TEST(WindowSizeTest, ReadsTheTerminalsSize) {
  Pty pty = OpenPty();
  winsize size = {};
  size.ws_row = 24;
  size.ws_col = 132;
  // TIOCSWINSZ reads a struct winsize, which `size` is.
  ASSERT_EQ(ioctl(pty.master.get(), TIOCSWINSZ, &size), 0);
  absl::StatusOr<WindowSize> got = GetWindowSize(pty.slave.get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->rows, 24u);
  EXPECT_EQ(got->cols, 132u);
  absl::StatusOr<Pipe> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_FALSE(GetWindowSize(pipe->read.get()).ok());
}

TEST(ResizeWatcherTest, EachSigwinchMakesItReadable) {
  absl::StatusOr<std::unique_ptr<ResizeWatcher>> watcher =
      ResizeWatcher::Start();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EXPECT_FALSE((*watcher)->Drain());
  EXPECT_EQ(ResizeWatcher::Start().status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_EQ(raise(SIGWINCH), 0);
  EXPECT_TRUE((*watcher)->Drain());
  EXPECT_FALSE((*watcher)->Drain());
  watcher->reset();
  // The old action (ignore) is back, and a new watcher may start.
  ASSERT_EQ(raise(SIGWINCH), 0);
  EXPECT_TRUE(ResizeWatcher::Start().ok());
}

}  // namespace
}  // namespace fcvm::runner::exec
