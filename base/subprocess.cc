#include "base/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/eintr.h"
#include "base/status.h"

extern char** environ;

namespace fcvm {
namespace {

// How much of a failed program's stderr an error message quotes.
constexpr size_t kStderrTailBytes = 2048;

// argv/envp arrays pointing into `strings`, which must outlive them.
std::vector<char*> CStringArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

ExitStatus DecodeWaitStatus(int status) {
  ExitStatus exit;
  if (WIFSIGNALED(status)) {
    exit.signaled = true;
    exit.signal = WTERMSIG(status);
  } else {
    exit.code = WEXITSTATUS(status);
  }
  return exit;
}

// Finds `program` the way execvp would (a name with a slash is used as
// given), so that "no such program" is reported the same everywhere: a
// posix_spawn implemented with fork rather than vfork (qemu-user, some libcs)
// cannot return the exec error and the child just exits 127. A name not in
// PATH is then looked for where Debian installs system tools (mke2fs,
// e2fsck, debugfs live in /usr/sbin), which a normal user's PATH lacks.
[[nodiscard]] absl::StatusOr<std::string> ResolveProgram(
    const std::string& program, absl::string_view context) {
  if (program.find('/') != std::string::npos) return program;
  const char* path_env = std::getenv("PATH");
  absl::string_view path = path_env != nullptr && *path_env != '\0'
                               ? path_env
                               : "/usr/local/bin:/usr/bin:/bin";
  std::vector<absl::string_view> dirs = absl::StrSplit(path, ':');
  for (absl::string_view system : kSystemProgramDirs) dirs.push_back(system);
  for (absl::string_view dir : dirs) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return ErrnoStatus(ENOENT, context);
}

// glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++, so call the kernel
// directly (Linux 5.3+).
int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(
      ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

// Milliseconds until `deadline` for poll(): -1 for never, 0 if past.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
      1 << 30));
}

[[nodiscard]] absl::Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return ErrnoStatus("fcntl O_NONBLOCK");
  }
  return absl::OkStatus();
}

// Sets up one standard stream of the child per `mode`.
[[nodiscard]] absl::Status ConnectStream(StdioMode mode, int child_fd,
                                         bool child_reads,
                                         const std::string& file,
                                         posix_spawn_file_actions_t* actions,
                                         UniqueFd* parent_end,
                                         UniqueFd* child_end) {
  switch (mode) {
    case StdioMode::kInherit:
      return absl::OkStatus();
    case StdioMode::kNull: {
      int err = posix_spawn_file_actions_addopen(
          actions, child_fd, "/dev/null", child_reads ? O_RDONLY : O_WRONLY, 0);
      if (err != 0) return ErrnoStatus(err, "spawn: open /dev/null");
      return absl::OkStatus();
    }
    case StdioMode::kPipe: {
      ASSIGN_OR_RETURN(Pipe pipe, MakePipe());
      *parent_end = child_reads ? std::move(pipe.write) : std::move(pipe.read);
      *child_end = child_reads ? std::move(pipe.read) : std::move(pipe.write);
      // dup2 in the child clears O_CLOEXEC on the copy.
      int err =
          posix_spawn_file_actions_adddup2(actions, child_end->get(), child_fd);
      if (err != 0) return ErrnoStatus(err, "spawn: dup2");
      return absl::OkStatus();
    }
    case StdioMode::kFile: {
      if (child_reads || file.empty()) {
        return absl::InvalidArgumentError(
            "StdioMode::kFile is for stdout and stderr, with a file named");
      }
      int err = posix_spawn_file_actions_addopen(
          actions, child_fd, file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (err != 0) return ErrnoStatus(err, absl::StrCat("spawn: ", file));
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown StdioMode");
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signaled) {
    return absl::StrCat("was killed by signal ", signal, " (",
                        ::strsignal(signal), ")");
  }
  return absl::StrCat("exited with status ", code);
}

[[nodiscard]] absl::Status ExitStatus::ToStatus(
    absl::string_view program, absl::string_view stderr_output) const {
  if (success()) return absl::OkStatus();
  std::string message = absl::StrCat("'", program, "' ", ToString());
  absl::string_view tail = stderr_output;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) {
    tail.remove_suffix(1);
  }
  if (!tail.empty()) {
    if (tail.size() > kStderrTailBytes) {
      tail = tail.substr(tail.size() - kStderrTailBytes);
      absl::StrAppend(&message, ": ...", tail);
    } else {
      absl::StrAppend(&message, ": ", tail);
    }
  }
  return absl::InternalError(message);
}

[[nodiscard]] absl::StatusOr<Subprocess> Subprocess::Start(
    SubprocessOptions options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return absl::InvalidArgumentError("spawn: empty argv");
  }
  Subprocess child;
  child.name_ = options.argv[0];
  const std::string context = absl::StrCat("start '", child.name_, "'");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  absl::Cleanup destroy = [&] {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  };

  // The child's ends stay open here until the spawn is done.
  UniqueFd child_in, child_out, child_err;
  RETURN_IF_ERROR(Annotate(
      ConnectStream(options.stdin_mode, STDIN_FILENO, /*child_reads=*/true, "",
                    &actions, &child.stdin_, &child_in),
      context));
  RETURN_IF_ERROR(Annotate(
      ConnectStream(options.stdout_mode, STDOUT_FILENO, false,
                    options.stdout_file, &actions, &child.stdout_, &child_out),
      context));
  RETURN_IF_ERROR(Annotate(
      ConnectStream(options.stderr_mode, STDERR_FILENO, false,
                    options.stderr_file, &actions, &child.stderr_, &child_err),
      context));
  if (!options.working_dir.empty()) {
    int err = posix_spawn_file_actions_addchdir_np(&actions,
                                                   options.working_dir.c_str());
    if (err != 0) return ErrnoStatus(err, context);
  }
  // Nothing but stdio crosses into the child, whatever the parent forgot to
  // mark close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  // A clean signal state: the parent may ignore SIGPIPE or block signals.
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
    child.group_ = true;
  }
  posix_spawnattr_setflags(&attr, flags);

  ASSIGN_OR_RETURN(const std::string program,
                   ResolveProgram(options.argv[0], context));
  std::vector<char*> argv = CStringArray(options.argv);
  std::vector<char*> envp;
  if (options.env.has_value()) envp = CStringArray(*options.env);
  char** env = options.env.has_value() ? envp.data() : environ;

  pid_t pid;
  // glibc's posix_spawn reports exec failures (EACCES, ENOEXEC) here.
  int err =
      posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), env);
  if (err != 0) return ErrnoStatus(err, context);
  child.pid_ = pid;
  if (options.new_process_group) {
    // The child puts itself in its own group, but a fork-based posix_spawn
    // may return before it has: do it from here too, so Signal() can reach
    // the group at once. Fails harmlessly once the child has exec'd.
    ::setpgid(pid, pid);
  }
  // The pid cannot be reused before we reap it, so this names our child.
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    absl::Status status = ErrnoStatus(absl::StrCat(context, ": pidfd_open"));
    child.KillAndReap();
    return status;
  }
  child.pidfd_.reset(pidfd);
  return child;
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      group_(other.group_),
      name_(std::move(other.name_)),
      pidfd_(std::move(other.pidfd_)),
      stdin_(std::move(other.stdin_)),
      stdout_(std::move(other.stdout_)),
      stderr_(std::move(other.stderr_)),
      exit_status_(std::exchange(other.exit_status_, std::nullopt)) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    group_ = other.group_;
    name_ = std::move(other.name_);
    pidfd_ = std::move(other.pidfd_);
    stdin_ = std::move(other.stdin_);
    stdout_ = std::move(other.stdout_);
    stderr_ = std::move(other.stderr_);
    exit_status_ = std::exchange(other.exit_status_, std::nullopt);
  }
  return *this;
}

Subprocess::~Subprocess() { KillAndReap(); }

void Subprocess::KillAndReap() {
  if (pid_ <= 0) return;
  if (!finished()) {
    // Until the leader is reaped its pid, hence its group id, cannot be
    // reused, so this reaches our child and only what it started.
    if (group_) {
      ::kill(-pid_, SIGKILL);
    } else {
      PidfdSendSignal(pidfd_.get(), SIGKILL);
    }
    int status;
    if (RetryEintr([&] { return ::waitpid(pid_, &status, 0); }) == pid_) {
      exit_status_ = DecodeWaitStatus(status);
    }
  }
  pid_ = -1;
}

[[nodiscard]] absl::StatusOr<ExitStatus> Subprocess::Wait(
    absl::Duration timeout) {
  if (finished()) return *exit_status_;
  if (pid_ <= 0) return absl::FailedPreconditionError("no child process");
  const absl::Time deadline = absl::Now() + timeout;
  struct pollfd pfd = {pidfd_.get(), POLLIN, 0};
  while (true) {
    int n = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (n > 0) break;
    if (n == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("'", name_, "' (pid ", pid_, ") still running after ",
                       absl::FormatDuration(timeout)));
    }
    if (errno != EINTR) {
      return ErrnoStatus(absl::StrCat("waiting for '", name_, "'"));
    }
  }
  int status;
  if (RetryEintr([&] { return ::waitpid(pid_, &status, 0); }) != pid_) {
    return ErrnoStatus(absl::StrCat("waitpid '", name_, "'"));
  }
  exit_status_ = DecodeWaitStatus(status);
  return *exit_status_;
}

[[nodiscard]] absl::Status Subprocess::Signal(int signal) {
  if (pid_ <= 0 || finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("signal '", name_, "': process has exited"));
  }
  int rc =
      group_ ? ::kill(-pid_, signal) : PidfdSendSignal(pidfd_.get(), signal);
  if (rc != 0) {
    return ErrnoStatus(absl::StrCat("signal '", name_, "' (pid ", pid_, ")"));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<ExitStatus> Subprocess::Kill() {
  if (!finished()) {
    absl::Status status = Signal(SIGKILL);
    if (!status.ok() && !finished()) return status;
  }
  return Wait();
}

[[nodiscard]] absl::StatusOr<Subprocess::Output> Subprocess::Communicate(
    absl::string_view input, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Output output;
  absl::string_view pending = input;
  for (UniqueFd* fd : {&stdin_, &stdout_, &stderr_}) {
    if (fd->valid()) RETURN_IF_ERROR(SetNonBlocking(fd->get()));
  }
  if (stdin_.valid() && pending.empty()) stdin_.reset();

  while (stdin_.valid() || stdout_.valid() || stderr_.valid()) {
    struct pollfd fds[3];
    int count = 0;
    if (stdin_.valid()) fds[count++] = {stdin_.get(), POLLOUT, 0};
    if (stdout_.valid()) fds[count++] = {stdout_.get(), POLLIN, 0};
    if (stderr_.valid()) fds[count++] = {stderr_.get(), POLLIN, 0};
    int n = ::poll(fds, count, PollTimeoutMs(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("polling '", name_, "'"));
    }
    if (n == 0) {
      KillAndReap();
      return absl::DeadlineExceededError(
          absl::StrCat("'", name_, "' did not finish within ",
                       absl::FormatDuration(timeout), "; killed"));
    }
    for (int i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == stdin_.get()) {
        ssize_t w = ::write(stdin_.get(), pending.data(), pending.size());
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
          // EPIPE: the child stopped reading; what it does next decides.
          stdin_.reset();
          continue;
        }
        if (w > 0) pending.remove_prefix(static_cast<size_t>(w));
        if (pending.empty()) stdin_.reset();
        continue;
      }
      UniqueFd& fd = fds[i].fd == stdout_.get() ? stdout_ : stderr_;
      std::string& sink =
          fds[i].fd == stdout_.get() ? output.stdout_data : output.stderr_data;
      char buf[65536];
      ssize_t r = ::read(fd.get(), buf, sizeof(buf));
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
    }
  }
  absl::StatusOr<ExitStatus> exit = Wait(deadline - absl::Now());
  if (!exit.ok()) {
    if (absl::IsDeadlineExceeded(exit.status())) {
      KillAndReap();
      return absl::DeadlineExceededError(
          absl::StrCat("'", name_, "' did not finish within ",
                       absl::FormatDuration(timeout), "; killed"));
    }
    return exit.status();
  }
  output.exit = *exit;
  return output;
}

[[nodiscard]] absl::StatusOr<Subprocess::Output> RunCommand(
    SubprocessOptions options, absl::Duration timeout,
    absl::string_view input) {
  options.stdin_mode = input.empty() ? StdioMode::kNull : StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  const std::string command = absl::StrJoin(options.argv, " ");
  ASSIGN_OR_RETURN(Subprocess child, Subprocess::Start(std::move(options)));
  ASSIGN_OR_RETURN(Subprocess::Output output,
                   child.Communicate(input, timeout));
  RETURN_IF_ERROR(output.exit.ToStatus(command, output.stderr_data));
  return output;
}

bool InPath(const std::string& program) { return FindProgram(program).ok(); }

[[nodiscard]] absl::StatusOr<std::string> FindProgram(
    const std::string& program) {
  ASSIGN_OR_RETURN(std::string path, ResolveProgram(program, program));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      ::access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(program, ": no such executable file"));
  }
  return path;
}

}  // namespace fcvm
