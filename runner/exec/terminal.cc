#include "runner/exec/terminal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/status.h"

namespace fcvm::runner::exec {
namespace {

// Signal handlers can only reach globals: the one raw terminal, its saved
// modes and the actions we replaced.
constexpr int kFatalSignals[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
constexpr int kSignalCount = sizeof(kFatalSignals) / sizeof(kFatalSignals[0]);
std::atomic<int> g_raw_fd{-1};
termios g_saved_modes;
struct sigaction g_old_actions[kSignalCount];

// Async-signal-safe: tcsetattr, sigaction and raise all are.
void RestoreAndReraise(int signo) {
  const int fd = g_raw_fd.exchange(-1);
  if (fd >= 0) tcsetattr(fd, TCSANOW, &g_saved_modes);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigaction(signo, &default_action, nullptr);
  // Blocked while this handler runs: delivered, with the default action,
  // as it returns.
  raise(signo);
}

sigset_t FatalSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : kFatalSignals) sigaddset(&set, signo);
  return set;
}

std::atomic<int> g_winch_fd{-1};
struct sigaction g_old_winch;

void OnWinch(int) {
  const int saved_errno = errno;
  const int fd = g_winch_fd.load();
  if (fd >= 0) (void)!write(fd, "w", 1);  // A full pipe has said it already.
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RawTerminal>> RawTerminal::Enter(int fd) {
  termios modes;
  if (!isatty(fd) || tcgetattr(fd, &modes) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("raw mode: fd ", fd, " is not a terminal"));
  }
  int expected = -1;
  if (!g_raw_fd.compare_exchange_strong(expected, fd)) {
    return absl::FailedPreconditionError(
        "raw mode: another terminal is raw already");
  }
  g_saved_modes = modes;  // Before our handlers, which read it, go in.
  // The handlers go in before the modes change, so that no moment is left
  // where a signal would leave the terminal raw.
  for (int i = 0; i < kSignalCount; ++i) {
    struct sigaction action = {};
    action.sa_handler = RestoreAndReraise;
    sigemptyset(&action.sa_mask);
    sigaction(kFatalSignals[i], &action, &g_old_actions[i]);
  }
  termios raw = modes;
  cfmakeraw(&raw);
  if (RetryEintr([&] { return tcsetattr(fd, TCSADRAIN, &raw); }) != 0) {
    const absl::Status error = ErrnoStatus("raw mode: tcsetattr");
    RawTerminal undo(fd);  // Puts the handlers back.
    return error;
  }
  return std::unique_ptr<RawTerminal>(new RawTerminal(fd));
}

RawTerminal::~RawTerminal() {
  // With the signals held back, a late one cannot kill us between giving
  // the modes back and putting the old handlers back; it arrives after,
  // under the action the program had before.
  const sigset_t fatal = FatalSignalSet();
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &fatal, &old_mask);
  if (g_raw_fd.exchange(-1) == fd_) {
    RetryEintr([&] { return tcsetattr(fd_, TCSADRAIN, &g_saved_modes); });
  }
  for (int i = 0; i < kSignalCount; ++i) {
    sigaction(kFatalSignals[i], &g_old_actions[i], nullptr);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
}

absl::StatusOr<WindowSize> GetWindowSize(int fd) {
  winsize size = {};
  // TIOCGWINSZ fills a struct winsize, which `size` is.
  if (ioctl(fd, TIOCGWINSZ, &size) != 0) {
    return ErrnoStatus(absl::StrCat("terminal size of fd ", fd));
  }
  return WindowSize{size.ws_row, size.ws_col};
}

absl::StatusOr<std::unique_ptr<ResizeWatcher>> ResizeWatcher::Start() {
  ASSIGN_OR_RETURN(Pipe pipe, MakePipe(O_NONBLOCK));
  int expected = -1;
  if (!g_winch_fd.compare_exchange_strong(expected, pipe.write.get())) {
    return absl::FailedPreconditionError("SIGWINCH is watched already");
  }
  struct sigaction action = {};
  action.sa_handler = OnWinch;
  action.sa_flags = SA_RESTART;  // Blocking writes elsewhere carry on.
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGWINCH, &action, &g_old_winch) != 0) {
    g_winch_fd = -1;
    return ErrnoStatus("sigaction SIGWINCH");
  }
  return std::unique_ptr<ResizeWatcher>(
      new ResizeWatcher(std::move(pipe.read), std::move(pipe.write)));
}

ResizeWatcher::~ResizeWatcher() {
  sigaction(SIGWINCH, &g_old_winch, nullptr);
  g_winch_fd = -1;
}

bool ResizeWatcher::Drain() {
  bool any = false;
  char buffer[64];
  while (RetryEintr([&] { return read(read_.get(), buffer, sizeof(buffer)); }) >
         0) {
    any = true;
  }
  return any;
}

}  // namespace fcvm::runner::exec
