#include "runner/exec/pump.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/status.h"
#include "channel/frame.h"
#include "runner/exec/terminal.h"

namespace fcvm::runner::exec {
namespace {

// Output received and not yet written to one fd.
struct Pending {
  int fd;
  const char* what;
  std::deque<std::string> chunks;
  size_t offset = 0;  // Into chunks.front().
};

// One write of what `pending` holds (the fd said it is writable, so this
// does not wait long even on a blocking fd).
[[nodiscard]] absl::Status WriteSome(Pending& pending, Session& session) {
  const std::string& chunk = pending.chunks.front();
  const ssize_t n = RetryEintr([&] {
    return write(pending.fd, chunk.data() + pending.offset,
                 chunk.size() - pending.offset);
  });
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::OkStatus();
  }
  if (n < 0) return ErrnoStatus(absl::StrCat("writing ", pending.what));
  session.Consumed(n);
  pending.offset += n;
  if (pending.offset == chunk.size()) {
    pending.chunks.pop_front();
    pending.offset = 0;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExecResult> RunExec(HubClient& client, channel::Exec exec,
                                   int in_fd, int out_fd, int err_fd) {
  std::unique_ptr<ResizeWatcher> resizes;
  int terminal = -1;
  if (exec.tty() && !exec.detach()) {
    for (int fd : {in_fd, out_fd}) {
      if (fd >= 0 && isatty(fd)) {
        terminal = fd;
        break;
      }
    }
  }
  if (terminal >= 0) {
    absl::StatusOr<WindowSize> size = GetWindowSize(terminal);
    if (!exec.has_size() && size.ok()) {
      exec.mutable_size()->set_rows(size->rows);
      exec.mutable_size()->set_cols(size->cols);
    }
    ASSIGN_OR_RETURN(resizes, ResizeWatcher::Start());
  }
  bool reading_stdin = exec.stdin() && !exec.detach() && in_fd >= 0;
  channel::Open open;
  *open.mutable_exec() = std::move(exec);
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session, client.Open(open));

  Pending out{out_fd, "stdout"};
  Pending err{err_fd, "stderr"};
  std::string buffer(channel::kMaxDataBytes, '\0');
  for (;;) {
    while (std::optional<channel::Data> data = session->TakeOutput()) {
      Pending& to = data->stream() == channel::STDERR ? err : out;
      to.chunks.push_back(std::move(*data->mutable_data()));
    }
    const bool ended = session->ended();
    if (ended && out.chunks.empty() && err.chunks.empty()) break;

    std::vector<pollfd> fds;
    auto watch = [&fds](int fd, short events) {
      fds.push_back({fd, events, 0});
      return fds.size() - 1;
    };
    const size_t none = SIZE_MAX;
    // Stdin is read only while there is credit to send it: the rest
    // waits in the caller's pipe or terminal, not here.
    const size_t in_at = reading_stdin && !ended && session->stdin_credit() > 0
                             ? watch(in_fd, POLLIN)
                             : none;
    const size_t out_at = out.chunks.empty() ? none : watch(out_fd, POLLOUT);
    const size_t err_at = err.chunks.empty() ? none : watch(err_fd, POLLOUT);
    const size_t resize_at =
        resizes != nullptr && !ended ? watch(resizes->fd(), POLLIN) : none;
    if (ended) {
      // Nothing more comes for the session, and the hub may be gone: write
      // out what is left without it.
      if (RetryEintr([&] { return poll(fds.data(), fds.size(), -1); }) < 0) {
        return ErrnoStatus("poll");
      }
    } else {
      absl::Status polled =
          client.Poll(absl::MakeSpan(fds), absl::InfiniteDuration());
      // The Exit may have come in the same read as the hub's hang-up.
      if (!polled.ok() && !session->ended()) return polled;
    }
    const auto ready = [&fds, none](size_t at) {
      return at != none && (fds[at].revents & (POLLIN | POLLOUT | POLLHUP |
                                               POLLERR | POLLNVAL)) != 0;
    };
    if (ready(in_at) && !session->ended()) {
      const size_t want =
          std::min<uint64_t>(buffer.size(), session->stdin_credit());
      const ssize_t n =
          RetryEintr([&] { return read(in_fd, buffer.data(), want); });
      if (n > 0) {
        RETURN_IF_ERROR(
            session->SendStdin(absl::string_view(buffer.data(), n)));
      } else if (n == 0) {
        RETURN_IF_ERROR(session->CloseStdin());
        reading_stdin = false;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return ErrnoStatus("reading stdin");
      }
    }
    if (ready(out_at)) RETURN_IF_ERROR(WriteSome(out, *session));
    if (ready(err_at)) RETURN_IF_ERROR(WriteSome(err, *session));
    if (ready(resize_at) && resizes->Drain()) {
      if (absl::StatusOr<WindowSize> size = GetWindowSize(terminal);
          size.ok()) {
        RETURN_IF_ERROR(session->Resize(size->rows, size->cols));
      }
    }
  }
  ASSIGN_OR_RETURN(channel::Exit exit, session->WaitExit());
  return ExecResult{std::move(exit), session->started_id()};
}

}  // namespace fcvm::runner::exec
