#ifndef FCVM_RUNNER_EXEC_TERMINAL_H_
#define FCVM_RUNNER_EXEC_TERMINAL_H_

// The user's terminal during `fcvm exec -t`: raw mode (every key goes to
// the guest's pseudo-terminal, which does its own echo and line editing),
// its size, and its resizes.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace fcvm::runner::exec {

// Puts the terminal `fd` in raw mode (cfmakeraw) for this object's life
// and restores the modes it had when destroyed. SIGTERM, SIGHUP, SIGINT
// and SIGQUIT arriving meanwhile restore them too, then kill the process
// with the signal's default action. SIGKILL cannot be caught: a terminal
// left raw by `kill -9` needs `stty sane` (or `reset`). One at a time.
class RawTerminal {
 public:
  // FailedPrecondition if `fd` is not a terminal or another RawTerminal
  // lives.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RawTerminal>> Enter(
      int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  explicit RawTerminal(int fd) : fd_(fd) {}
  int fd_;
};

struct WindowSize {
  uint32_t rows = 0;
  uint32_t cols = 0;
};

// The size of the terminal `fd` (TIOCGWINSZ); fails if it is not one.
[[nodiscard]] absl::StatusOr<WindowSize> GetWindowSize(int fd);

// Makes SIGWINCH readable: fd() becomes readable after each one, for this
// object's life (a self-pipe, since the signal may land on any thread).
// One at a time; the previous SIGWINCH action comes back when destroyed.
class ResizeWatcher {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ResizeWatcher>> Start();
  ~ResizeWatcher();
  ResizeWatcher(const ResizeWatcher&) = delete;
  ResizeWatcher& operator=(const ResizeWatcher&) = delete;

  int fd() const { return read_.get(); }
  // Empties the pipe; whether a SIGWINCH had arrived.
  bool Drain();

 private:
  ResizeWatcher(UniqueFd read, UniqueFd write)
      : read_(std::move(read)), write_(std::move(write)) {}
  UniqueFd read_, write_;
};

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_TERMINAL_H_
