#include "agent/channel_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <sys/socket.h>
// After sys/socket.h: it uses struct sockaddr.
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/session_command.h"
#include "base/eintr.h"
#include "base/file.h"
#include "base/status.h"
#include "channel/frame.h"
#include "channel/link.h"
#include "channel/names.h"
#include "google/protobuf/unknown_field_set.h"

extern char** environ;

namespace fcvm::agent {
namespace {

using channel::Frame;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxDetached = 256;
// `podman container inspect` for a Stat: the longest it may take.
constexpr auto kStatTimeout = std::chrono::seconds(30);

void Log(absl::string_view message) {
  // The console: the host keeps it in console.log (not an @fcvm frame).
  std::fprintf(stderr, "fc-agent channel: %.*s\n",
               static_cast<int>(message.size()), message.data());
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// dup(2) keeps no O_CLOEXEC: a copy made without it would reach the
// processes of every later session (a terminal's master among them).
int DupCloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// A session's process: its stdio on the given fds, a session (and process
// group) of its own, the terminal as its controlling one when there is one.
struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd;
};

[[nodiscard]] absl::StatusOr<Spawned> Spawn(const SessionCommand& command,
                                            int in, int out, int err,
                                            bool tty) {
  // Everything the child needs is made before fork: it only calls
  // async-signal-safe functions.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const std::string& entry : command.env) {
    const std::string name = entry.substr(0, entry.find('=') + 1);
    env.erase(std::remove_if(env.begin(), env.end(),
                             [&](const std::string& e) {
                               return absl::StartsWith(e, name);
                             }),
              env.end());
    env.push_back(entry);
  }
  std::vector<char*> argv, envp;
  for (const std::string& a : command.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string dir =
      command.working_dir.empty() ? "/" : command.working_dir;
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd status_read(status_pipe[0]), status_write(status_pipe[1]);
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork");
  if (pid == 0) {
    setsid();
    if (tty) ioctl(in, TIOCSCTTY, 0);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    // Only stdio crosses into the session, whatever this process inherited
    // without O_CLOEXEC (the status pipe stays open until the exec).
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    // Which step failed (0: chdir, 1: exec) and its errno.
    int failed[2] = {0, 0};
    if (chdir(dir.c_str()) != 0) {
      failed[1] = errno;
    } else {
      execvpe(argv[0], argv.data(), envp.data());
      failed[0] = 1;
      failed[1] = errno;
    }
    (void)!write(status_write.get(), failed, sizeof(failed));
    _exit(127);
  }
  status_write.reset();
  int failed[2] = {0, 0};
  const ssize_t got = RetryEintr(
      [&] { return read(status_read.get(), failed, sizeof(failed)); });
  if (got == sizeof(failed)) {
    waitpid(pid, nullptr, 0);
    const int error = failed[1];
    return absl::Status(
        error == ENOENT ? absl::StatusCode::kNotFound
                        : absl::StatusCode::kPermissionDenied,
        failed[0] == 0
            ? absl::StrCat("working directory '", dir,
                           "': ", std::strerror(error))
            : absl::StrCat(command.argv[0], ": ", std::strerror(error)));
  }
  Spawned spawned;
  spawned.pid = pid;
  spawned.pidfd.reset(PidfdOpen(pid));
  if (!spawned.pidfd) {
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return ErrnoStatus("pidfd_open");
  }
  return spawned;
}

struct Session {
  uint64_t id = 0;
  std::string name;  // FCVM_SESSION's value.
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd in, out, err;  // With a terminal: in and out are its master.
  bool tty = false;
  bool forward_stdin = false;
  std::string pending_in;
  bool stdin_eof = false;
  uint64_t credit = channel::kWindowBytes;  // Output we may still send.
  uint64_t uncredited_in = 0;  // Stdin written, not yet credited back.
  bool exited = false;
  int code = 0;
  int signal = 0;
  std::optional<Clock::time_point> deadline;
  bool timed_out = false;
  int killed = 0;
  bool detached = false;
  bool container_detach = false;  // `podman exec -d`.
  // Stat: the container's pid comes from `podman inspect` on `out`.
  std::optional<channel::Stat> stat;
  std::string captured;
  uint32_t timeout_ms = 0;
};

class Server {
 public:
  explicit Server(const ChannelServerOptions& options)
      : options_(options), link_("agent", options.version) {}
  // The sessions' processes end with the server that ran them: nobody
  // would read their output or enforce their timeouts.
  ~Server();

  absl::Status Run(UniqueFd port, UniqueFd listener, UniqueFd connection);

 private:
  void OnFrame(Frame& frame);
  void OnPeer(bool resumed);
  void Open(const channel::Open& open);
  void StartStat(uint64_t id, const channel::Stat& stat);
  void FinishStat(Session& session);
  void SendError(uint64_t session, channel::Error::Code code,
                 const std::string& message);
  void PumpOutput(Session& session);
  void PumpInput(Session& session);
  void OnExit(Session& session);
  void MaybeFinish(Session& session);
  int KillProcesses(Session& session, int signal);
  void EndSession(Session& session);
  void CloseStream(Session& session, UniqueFd& fd, channel::Stream stream);

  const ChannelServerOptions& options_;
  channel::Link link_;
  std::map<uint64_t, Session> sessions_;
  std::vector<Session> detached_;
  // Detached container sessions' timeouts: FCVM_SESSION ids to kill then.
  struct MarkedDeadline {
    std::string name;
    Clock::time_point at;
  };
  std::vector<MarkedDeadline> marked_deadlines_;
  uint64_t next_name_ = 1;
  // Hex: the name goes into the environment (no NUL) and into the
  // Started frame's string field (valid UTF-8).
  std::string name_prefix_ =
      absl::BytesToHexString(channel::NewInstanceId().substr(0, 4));
};

Server::~Server() {
  // Detached sessions are meant to outlive the channel: they stay.
  for (auto& [id, session] : sessions_) EndSession(session);
}

void Server::SendError(uint64_t session, channel::Error::Code code,
                       const std::string& message) {
  Frame frame;
  frame.mutable_error()->set_session(session);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(message);
  link_.Send(std::move(frame));
}

int Server::KillProcesses(Session& session, int signal) {
  int count = 0;
  for (pid_t pid : SessionProcesses("/proc", session.name)) {
    if (kill(pid, signal) == 0) ++count;
  }
  if (session.pid > 0 && !session.exited) kill(-session.pid, signal);
  return count;
}

void Server::EndSession(Session& session) {
  if (session.exited || session.pid <= 0) return;
  KillProcesses(session, SIGKILL);
  waitpid(session.pid, nullptr, 0);
}

void Server::OnPeer(bool resumed) {
  if (resumed) return;
  // A new host: a restored clone's hub, or the hub after our restart. The
  // sessions here were the old host's (in a clone, copies of them): end
  // them; detached ones stay.
  for (auto& [id, session] : sessions_) EndSession(session);
  sessions_.clear();
}

void Server::CloseStream(Session& session, UniqueFd& fd,
                         channel::Stream stream) {
  if (!fd) return;
  const bool shared = session.tty && &fd == &session.out;
  fd.reset();
  if (shared) session.in.reset();
  if (session.stat.has_value()) return;
  Frame frame;
  channel::Data& data = *frame.mutable_data();
  data.set_session(session.id);
  data.set_stream(stream);
  data.set_eof(true);
  link_.Send(std::move(frame));
}

void Server::PumpOutput(Session& session) {
  struct Source {
    UniqueFd* fd;
    channel::Stream stream;
  };
  for (Source source : {Source{&session.out, channel::STDOUT},
                        Source{&session.err, channel::STDERR}}) {
    UniqueFd& fd = *source.fd;
    while (fd && (session.credit > 0 || session.stat.has_value())) {
      char buffer[channel::kMaxDataBytes];
      const size_t want =
          session.stat.has_value()
              ? sizeof(buffer)
              : std::min<uint64_t>(sizeof(buffer), session.credit);
      const ssize_t n = read(fd.get(), buffer, want);
      if (n > 0) {
        if (session.stat.has_value()) {
          if (session.captured.size() < 4096)
            session.captured.append(buffer, n);
          continue;
        }
        session.credit -= n;
        Frame frame;
        channel::Data& data = *frame.mutable_data();
        data.set_session(session.id);
        data.set_stream(source.stream);
        data.set_data(buffer, n);
        link_.Send(std::move(frame));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // The process is gone and everything it wrote has been read:
        // whatever still holds the pipe (a background child) is not
        // waited for, as `podman exec` does not.
        if (session.exited) CloseStream(session, fd, source.stream);
        break;
      }
      // End of file, or EIO: a terminal whose last process closed it.
      CloseStream(session, fd, source.stream);
    }
  }
}

void Server::PumpInput(Session& session) {
  while (session.in && !session.pending_in.empty()) {
    const ssize_t n = write(session.in.get(), session.pending_in.data(),
                            session.pending_in.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      // The process closed its stdin: what is left is dropped (credited,
      // so the host is not left waiting).
      session.uncredited_in += session.pending_in.size();
      session.pending_in.clear();
      if (!session.tty) session.in.reset();
      break;
    }
    session.pending_in.erase(0, n);
    session.uncredited_in += n;
  }
  if (session.uncredited_in > 0) {
    Frame frame;
    frame.mutable_credit()->set_session(session.id);
    frame.mutable_credit()->set_bytes(session.uncredited_in);
    session.uncredited_in = 0;
    link_.Send(std::move(frame));
  }
  // A terminal's end of input is the user's Ctrl-D, not a closed master.
  if (session.stdin_eof && session.pending_in.empty() && !session.tty) {
    session.in.reset();
  }
}

void Server::OnExit(Session& session) {
  siginfo_t info = {};
  if (waitid(P_PID, session.pid, &info, WEXITED | WNOHANG) != 0 ||
      info.si_pid == 0) {
    return;
  }
  session.exited = true;
  session.pidfd.reset();
  if (info.si_code == CLD_EXITED) {
    session.code = info.si_status;
  } else {
    session.signal = info.si_status;
    session.code = 128 + info.si_status;
  }
  if (!session.tty) session.in.reset();
  PumpOutput(session);
}

void Server::FinishStat(Session& session) {
  Frame frame;
  channel::Stated& stated = *frame.mutable_stated();
  stated.set_session(session.id);
  int pid = 0;
  if (session.timed_out) {
    SendError(session.id, channel::Error::UNAVAILABLE,
              absl::StrCat("stat ", session.stat->path(), ": ",
                           options_.podman, " container inspect did not answer "
                           "in ", kStatTimeout.count(), " s"));
    return;
  }
  if (session.code != 0 ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(session.captured), &pid) ||
      pid <= 0) {
    SendError(session.id, channel::Error::BAD_REQUEST,
              absl::StrCat("stat ", session.stat->path(), ": the container ",
                           options_.container, " is not running"));
    return;
  }
  // The path as the container sees it: resolved inside its root, so a
  // symlink cannot lead out of it.
  UniqueFd root(open(absl::StrCat("/proc/", pid, "/root").c_str(),
                     O_PATH | O_DIRECTORY | O_CLOEXEC));
  open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd target;
  if (root) {
    target.reset(static_cast<int>(syscall(SYS_openat2, root.get(),
                                          session.stat->path().c_str(), &how,
                                          sizeof(how))));
  }
  struct stat st;
  if (target && fstat(target.get(), &st) == 0) {
    stated.set_exists(true);
    stated.set_directory(S_ISDIR(st.st_mode));
    stated.set_mode(st.st_mode);
  }
  link_.Send(std::move(frame));
}

void Server::MaybeFinish(Session& session) {
  if (!session.exited || session.out || session.err) return;
  if (session.container_detach && session.code == 0 && session.deadline &&
      !session.timed_out) {
    // Its --timeout outlives `podman exec -d`: kept by the session's id.
    marked_deadlines_.push_back({session.name, *session.deadline});
  }
  if (session.stat.has_value()) {
    FinishStat(session);
  } else {
    Frame frame;
    channel::Exit& exit = *frame.mutable_exit();
    exit.set_session(session.id);
    exit.set_code(session.code);
    exit.set_signal(session.signal);
    exit.set_timed_out(session.timed_out);
    if (session.timed_out) {
      exit.set_message(absl::StrCat(
          "timed out after ",
          absl::FormatDuration(absl::Milliseconds(session.timeout_ms)),
          ": killed ", session.killed, " processes of the session"));
    } else if (session.signal != 0) {
      exit.set_message(absl::StrCat("killed by signal ", session.signal, " (",
                                    strsignal(session.signal), ")"));
    }
    link_.Send(std::move(frame));
  }
  sessions_.erase(session.id);
}

void Server::StartStat(uint64_t id, const channel::Stat& stat) {
  if (stat.path().empty() || stat.path()[0] != '/') {
    SendError(id, channel::Error::BAD_REQUEST,
              absl::StrCat("stat '", stat.path(), "': not an absolute path"));
    return;
  }
  SessionCommand command;
  command.argv = {options_.podman, "container",      "inspect",
                  "--format",      "{{.State.Pid}}", options_.container};
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    SendError(id, channel::Error::BAD_REQUEST, "stat: pipe failed");
    return;
  }
  UniqueFd out_read(out[0]), out_write(out[1]);
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  absl::StatusOr<Spawned> spawned =
      Spawn(command, null.get(), out_write.get(), null.get(), false);
  if (!spawned.ok()) {
    SendError(id, channel::Error::BAD_REQUEST,
              absl::StrCat("stat: ", spawned.status().message()));
    return;
  }
  Session& session = sessions_[id];
  session.id = id;
  session.name = absl::StrCat(name_prefix_, "-", next_name_++);
  session.pid = spawned->pid;
  session.pidfd = std::move(spawned->pidfd);
  session.out = std::move(out_read);
  SetNonBlocking(session.out.get());
  session.stat = stat;
  // Podman stuck on its lock must not leave the host waiting forever.
  session.deadline = Clock::now() + kStatTimeout;
}

void Server::Open(const channel::Open& open) {
  const uint64_t id = open.session();
  if (id == 0 || sessions_.count(id) != 0) {
    SendError(id, channel::Error::BAD_REQUEST,
              absl::StrCat("session ", id, " is not a new session number"));
    return;
  }
  // Detached sessions hold no buffers: a cap of their own.
  if (sessions_.size() >= channel::kMaxSessions ||
      (open.has_exec() && open.exec().detach() &&
       detached_.size() >= kMaxDetached)) {
    SendError(id, channel::Error::TOO_MANY,
              sessions_.size() >= channel::kMaxSessions
                  ? absl::StrCat("the agent runs ", channel::kMaxSessions,
                                 " sessions already")
                  : absl::StrCat("the agent runs ", kMaxDetached,
                                 " detached sessions already"));
    return;
  }
  if (open.has_stat()) return StartStat(id, open.stat());
  const std::string name = absl::StrCat(name_prefix_, "-", next_name_++);
  absl::StatusOr<SessionCommand> command;
  channel::Exec exec;
  if (open.has_exec()) {
    exec = open.exec();
    command = ExecCommand(exec, options_.podman, options_.container, name);
  } else if (open.has_copy_out()) {
    command = CopyOutCommand(open.copy_out(), options_.podman,
                             options_.container, name);
  } else if (open.has_copy_in()) {
    exec.set_stdin(true);
    command = CopyInCommand(open.copy_in(), options_.podman, options_.container,
                            name);
  } else {
    command = absl::InvalidArgumentError("an Open with nothing to open");
  }
  if (!command.ok()) {
    SendError(id, channel::Error::BAD_REQUEST,
              std::string(command.status().message()));
    return;
  }
  Session session;
  session.id = id;
  session.name = name;
  session.tty = exec.tty() && !exec.detach();
  session.forward_stdin = (exec.stdin() || session.tty) && !exec.detach();
  // In the container `podman exec -d` detaches (and says at once whether
  // the command started): the session is its short run. In the VM the
  // agent's own process is left running.
  session.detached = exec.detach() && exec.in_vm();
  session.container_detach = exec.detach() && !exec.in_vm();
  session.timeout_ms = exec.timeout_ms();
  UniqueFd child_in, child_out, child_err;
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (session.tty) {
    UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || grantpt(master.get()) != 0 || unlockpt(master.get()) != 0) {
      SendError(id, channel::Error::BAD_REQUEST, "no pseudo-terminal");
      return;
    }
    UniqueFd slave(
        ::open(ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave) {
      SendError(id, channel::Error::BAD_REQUEST, "no pseudo-terminal slave");
      return;
    }
    if (exec.size().rows() > 0 && exec.size().cols() > 0) {
      winsize size = {};
      size.ws_row = exec.size().rows();
      size.ws_col = exec.size().cols();
      ioctl(master.get(), TIOCSWINSZ, &size);
    }
    session.in.reset(DupCloexec(master.get()));
    session.out = std::move(master);
    child_in.reset(DupCloexec(slave.get()));
    child_out.reset(DupCloexec(slave.get()));
    child_err = std::move(slave);
  } else if (session.detached || session.container_detach) {
    child_in.reset(DupCloexec(null.get()));
    child_out.reset(DupCloexec(null.get()));
    child_err.reset(DupCloexec(null.get()));
    int err[2];
    // `podman exec -d` says on stderr why a command did not start.
    if (session.container_detach && pipe2(err, O_CLOEXEC) == 0) {
      session.err.reset(err[0]);
      child_err.reset(err[1]);
    }
  } else {
    // Each pair owned at once: a later failure (EMFILE) leaks none.
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
      SendError(id, channel::Error::BAD_REQUEST, "pipe failed");
      return;
    }
    child_in.reset(in[0]);
    session.in.reset(in[1]);
    if (pipe2(out, O_CLOEXEC) != 0) {
      SendError(id, channel::Error::BAD_REQUEST, "pipe failed");
      return;
    }
    session.out.reset(out[0]);
    child_out.reset(out[1]);
    if (pipe2(err, O_CLOEXEC) != 0) {
      SendError(id, channel::Error::BAD_REQUEST, "pipe failed");
      return;
    }
    session.err.reset(err[0]);
    child_err.reset(err[1]);
    if (!session.forward_stdin) {
      session.in.reset();
      child_in.reset(DupCloexec(null.get()));
    }
  }
  for (UniqueFd* fd : {&session.in, &session.out, &session.err}) {
    if (*fd) SetNonBlocking(fd->get());
  }
  absl::StatusOr<Spawned> spawned = Spawn(
      *command, child_in.get(), child_out.get(), child_err.get(), session.tty);
  if (!spawned.ok() && absl::IsNotFound(spawned.status()) && exec.in_vm() &&
      exec.user().empty() && !command->argv.empty() &&
      command->argv[0].find('/') == std::string::npos) {
    // The VM's own userland is small: its busybox (static, every applet
    // built in) stands in for a command the VM has no program for, as its
    // shell does (`--vm -- ps`).
    SessionCommand applet = *command;
    applet.argv.insert(applet.argv.begin(), "busybox");
    absl::StatusOr<Spawned> again = Spawn(
        applet, child_in.get(), child_out.get(), child_err.get(), session.tty);
    if (again.ok()) spawned = std::move(again);
  }
  if (!spawned.ok()) {
    // What Podman says for a command it cannot run: 127 not found, 126
    // not executable (only in the VM: in the container Podman says it).
    Frame started;
    started.mutable_started()->set_session(id);
    started.mutable_started()->set_id(name);
    link_.Send(std::move(started));
    if (!session.detached) {
      // On stderr too, as Podman says it there for a container.
      Frame said;
      said.mutable_data()->set_session(id);
      said.mutable_data()->set_stream(session.tty ? channel::STDOUT
                                                  : channel::STDERR);
      said.mutable_data()->set_data(
          absl::StrCat("fc-agent: ", spawned.status().message(), "\n"));
      link_.Send(std::move(said));
    }
    Frame frame;
    channel::Exit& exit = *frame.mutable_exit();
    exit.set_session(id);
    exit.set_code(absl::IsNotFound(spawned.status()) ? 127 : 126);
    exit.set_message(std::string(spawned.status().message()));
    link_.Send(std::move(frame));
    return;
  }
  session.pid = spawned->pid;
  session.pidfd = std::move(spawned->pidfd);
  if (session.timeout_ms > 0) {
    session.deadline =
        Clock::now() + std::chrono::milliseconds(session.timeout_ms);
  }
  Frame started;
  started.mutable_started()->set_session(id);
  started.mutable_started()->set_id(name);
  link_.Send(std::move(started));
  if (session.detached) {
    Frame frame;
    frame.mutable_exit()->set_session(id);
    frame.mutable_exit()->set_message(absl::StrCat("detached: ", name));
    link_.Send(std::move(frame));
    session.in.reset();
    detached_.push_back(std::move(session));
    return;
  }
  sessions_.emplace(id, std::move(session));
}

void Server::OnFrame(Frame& frame) {
  switch (frame.body_case()) {
    case Frame::kOpen:
      Open(frame.open());
      return;
    case Frame::kData: {
      auto it = sessions_.find(frame.data().session());
      if (it == sessions_.end()) return;  // Ended meanwhile.
      Session& session = it->second;
      if (frame.data().stream() != channel::STDIN || !session.forward_stdin) {
        return;
      }
      if (!session.in) {
        // The process closed its stdin: the bytes are dropped, and
        // credited so the host does not wait for them.
        Frame credit;
        credit.mutable_credit()->set_session(session.id);
        credit.mutable_credit()->set_bytes(frame.data().data().size());
        if (!frame.data().data().empty()) link_.Send(std::move(credit));
        return;
      }
      session.pending_in += frame.data().data();
      if (frame.data().eof() && !session.stdin_eof) {
        session.stdin_eof = true;
        // A terminal's end of input is a key (Ctrl-D at a line's start),
        // not a closed master (that would hang the terminal up): what a
        // piped `echo x | fcvm exec -it` ends with.
        if (session.tty) session.pending_in += "\x04";
      }
      if (session.pending_in.size() > 2 * channel::kWindowBytes) {
        // The host sent more than its credit: the session ends (the
        // Error is its last frame).
        const uint64_t id = session.id;
        EndSession(session);
        sessions_.erase(it);
        SendError(id, channel::Error::BAD_REQUEST,
                  "stdin beyond the session's window");
        return;
      }
      PumpInput(session);
      return;
    }
    case Frame::kCredit: {
      auto it = sessions_.find(frame.credit().session());
      if (it == sessions_.end()) return;
      it->second.credit += frame.credit().bytes();
      PumpOutput(it->second);
      MaybeFinish(it->second);
      return;
    }
    case Frame::kResize: {
      auto it = sessions_.find(frame.resize().session());
      if (it == sessions_.end() || !it->second.tty || !it->second.out) return;
      winsize size = {};
      size.ws_row = frame.resize().size().rows();
      size.ws_col = frame.resize().size().cols();
      ioctl(it->second.out.get(), TIOCSWINSZ, &size);
      return;
    }
    case Frame::kSignal: {
      auto it = sessions_.find(frame.signal().session());
      const int signal = frame.signal().signal();
      if (it == sessions_.end() || signal <= 0 || signal >= 65) return;
      KillProcesses(it->second, signal);
      return;
    }
    case Frame::kClose: {
      auto it = sessions_.find(frame.close().session());
      if (it == sessions_.end()) return;
      EndSession(it->second);
      sessions_.erase(it);
      return;
    }
    case Frame::kError:
      Log(absl::StrCat("the host says: ", frame.error().message()));
      return;
    case Frame::kHello:
      return;
    case Frame::BODY_NOT_SET: {
      const google::protobuf::UnknownFieldSet& unknown =
          frame.GetReflection()->GetUnknownFields(frame);
      SendError(0, channel::Error::UNKNOWN_MESSAGE,
                unknown.field_count() > 0
                    ? absl::StrCat(
                          "unknown message (field ", unknown.field(0).number(),
                          ") for channel protocol ", channel::kProtocolVersion)
                    : "an empty frame");
      return;
    }
    default:
      SendError(0, channel::Error::BAD_REQUEST,
                absl::StrCat("frame ", frame.body_case(),
                             " goes from the agent to the host, not back"));
      return;
  }
}

absl::Status Server::Run(UniqueFd port, UniqueFd listener,
                         UniqueFd connection) {
  const bool virtio = port.valid();
  bool host_here = false;  // virtio-serial: whether the host side is open.
  std::optional<Clock::time_point> look_again;
  if (virtio) {
    link_.Attach(std::move(port));
    look_again = Clock::now();
  } else if (connection) {
    link_.Attach(std::move(connection));
    host_here = true;
  }
  const bool test_connection = !virtio && !listener;
  channel::Link::Handler handler;
  handler.frame = [this](Frame& frame) { OnFrame(frame); };
  handler.peer = [this](const channel::Hello&, bool resumed) {
    OnPeer(resumed);
  };
  handler.garbage = [](const absl::Status& error) { Log(error.message()); };
  for (;;) {
    std::vector<pollfd> fds;
    enum Kind { kLink, kListener, kIn, kOut, kErr, kExit, kDetached };
    struct Slot {
      Kind kind;
      uint64_t session;
    };
    std::vector<Slot> slots;
    auto add = [&](int fd, short events, Kind kind, uint64_t session = 0) {
      fds.push_back({fd, events, 0});
      slots.push_back({kind, session});
    };
    if (link_.attached() && (!virtio || host_here)) {
      add(link_.fd(),
          static_cast<short>(POLLIN | (link_.wants_write() ? POLLOUT : 0)),
          kLink);
    }
    if (listener) add(listener.get(), POLLIN, kListener);
    std::optional<Clock::time_point> wake = look_again;
    for (auto& [id, s] : sessions_) {
      if (s.in && !s.pending_in.empty()) add(s.in.get(), POLLOUT, kIn, id);
      const bool can_send = s.credit > 0 || s.stat.has_value();
      if (s.out && can_send) add(s.out.get(), POLLIN, kOut, id);
      if (s.err && can_send) add(s.err.get(), POLLIN, kErr, id);
      if (s.pidfd) add(s.pidfd.get(), POLLIN, kExit, id);
      if (s.deadline && !s.timed_out && (!wake || *s.deadline < *wake)) {
        wake = s.deadline;
      }
    }
    for (const MarkedDeadline& marked : marked_deadlines_) {
      if (!wake || marked.at < *wake) wake = marked.at;
    }
    for (size_t i = 0; i < detached_.size(); ++i) {
      add(detached_[i].pidfd.get(), POLLIN, kDetached, i);
      if (detached_[i].deadline && !detached_[i].timed_out &&
          (!wake || *detached_[i].deadline < *wake)) {
        wake = detached_[i].deadline;
      }
    }
    int timeout_ms = -1;
    if (wake) {
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*wake -
                                                                   Clock::now())
                     .count() +
                 1));
    }
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) return ErrnoStatus("poll");
    const auto now = Clock::now();
    if (virtio && look_again && now >= *look_again) {
      pollfd probe = {link_.fd(), POLLIN | POLLOUT, 0};
      poll(&probe, 1, 0);
      if ((probe.revents & POLLHUP) == 0) {
        host_here = true;
        look_again.reset();
      } else {
        look_again = now + absl::ToChronoMilliseconds(options_.reconnect_poll);
      }
    }
    for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const Slot slot = slots[i];
      if (slot.kind == kLink) {
        absl::Status status = absl::OkStatus();
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          status = link_.OnReadable(handler);
        }
        if (status.ok() && virtio && (fds[i].revents & POLLHUP)) {
          status = absl::UnavailableError("the host closed the port");
        }
        if (status.ok()) status = link_.Flush();
        if (!status.ok()) {
          if (test_connection) return status;
          if (virtio) {
            // The port stays; its host side comes back (a new hub, a
            // restored clone's). Look again now and then.
            link_.Reset();
            host_here = false;
            look_again =
                now + absl::ToChronoMilliseconds(options_.reconnect_poll);
          } else {
            link_.Detach();
          }
        }
        continue;
      }
      if (slot.kind == kListener) {
        sockaddr_vm peer = {};
        socklen_t length = sizeof(peer);
        UniqueFd accepted(accept4(listener.get(),
                                  reinterpret_cast<sockaddr*>(&peer), &length,
                                  SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!accepted && (errno == EMFILE || errno == ENFILE)) {
          usleep(100 * 1000);  // Not a hot loop while fds are short.
        }
        if (accepted && peer.svm_cid != VMADDR_CID_HOST) {
          // The host is CID 2. A process in the guest (vsock loopback)
          // is not: it must not take the host's place.
          Log(absl::StrCat("refused a vsock connection from CID ",
                           peer.svm_cid));
          accepted.reset();
        }
        if (accepted) {
          // The host connects again after a restore (vsock connections
          // are reset by it): the newest connection is the host.
          link_.Attach(std::move(accepted));
          host_here = true;
        }
        continue;
      }
      if (slot.kind == kDetached) {
        Session& s = detached_[slot.session];
        siginfo_t info = {};
        if (waitid(P_PID, s.pid, &info, WEXITED | WNOHANG) == 0 &&
            info.si_pid != 0) {
          s.pidfd.reset();
        }
        continue;
      }
      auto it = sessions_.find(slot.session);
      if (it == sessions_.end()) continue;
      Session& s = it->second;
      switch (slot.kind) {
        case kIn:
          PumpInput(s);
          break;
        case kOut:
        case kErr:
          PumpOutput(s);
          break;
        case kExit:
          OnExit(s);
          break;
        default:
          break;
      }
      MaybeFinish(s);
    }
    detached_.erase(std::remove_if(detached_.begin(), detached_.end(),
                                   [](const Session& s) { return !s.pidfd; }),
                    detached_.end());
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& s = (it++)->second;
      if (s.deadline && !s.timed_out && now >= *s.deadline && !s.exited) {
        s.timed_out = true;
        s.killed = KillProcesses(s, SIGKILL);
      }
    }
    for (auto it = marked_deadlines_.begin(); it != marked_deadlines_.end();) {
      if (now < it->at) {
        ++it;
        continue;
      }
      for (pid_t pid : SessionProcesses("/proc", it->name)) kill(pid, SIGKILL);
      it = marked_deadlines_.erase(it);
    }
    for (Session& s : detached_) {
      if (s.deadline && !s.timed_out && now >= *s.deadline) {
        s.timed_out = true;
        KillProcesses(s, SIGKILL);
      }
    }
    if (link_.attached() && (!virtio || host_here)) {
      if (absl::Status flushed = link_.Flush(); !flushed.ok()) {
        if (test_connection) return flushed;
        if (!virtio) link_.Detach();
      }
    }
  }
}

// The virtio-serial port named kVirtioPortName, if the VM has one.
UniqueFd OpenVirtioPort(const ChannelServerOptions& options) {
  const std::string dir =
      absl::StrCat(options.sysfs_root, "/class/virtio-ports");
  DIR* ports = opendir(dir.c_str());
  if (ports == nullptr) return UniqueFd();
  UniqueFd fd;
  while (dirent* entry = readdir(ports)) {
    if (entry->d_name[0] == '.') continue;
    absl::StatusOr<std::string> name =
        ReadFile(absl::StrCat(dir, "/", entry->d_name, "/name"));
    if (!name.ok() ||
        absl::StripAsciiWhitespace(*name) != channel::kVirtioPortName) {
      continue;
    }
    fd.reset(open(absl::StrCat(options.dev_root, "/", entry->d_name).c_str(),
                  O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) Log(ErrnoStatus(absl::StrCat("open ", entry->d_name)).ToString());
    break;
  }
  closedir(ports);
  return fd;
}

UniqueFd ListenVsock() {
  UniqueFd fd(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return UniqueFd();
  sockaddr_vm address = {};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_ANY;
  address.svm_port = channel::kVsockPort;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
          0 ||
      listen(fd.get(), 8) != 0) {
    return UniqueFd();
  }
  return fd;
}

// Whether the VM has a vsock device (a transport under AF_VSOCK).
bool HasVsockDevice(const ChannelServerOptions& options) {
  DIR* devices =
      opendir(absl::StrCat(options.sysfs_root,
                           "/bus/virtio/drivers/vmw_vsock_virtio_transport")
                  .c_str());
  if (devices == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(devices)) {
    if (absl::StartsWith(entry->d_name, "virtio")) found = true;
  }
  closedir(devices);
  return found;
}

}  // namespace

absl::Status ServeChannel(const ChannelServerOptions& options, UniqueFd fd) {
  // A hub that hangs up while we write is an error to return, as in
  // RunChannelServer, not a signal that ends the process.
  signal(SIGPIPE, SIG_IGN);
  SetNonBlocking(fd.get());
  Server server(options);
  return server.Run(UniqueFd(), UniqueFd(), std::move(fd));
}

int RunChannelServer(const ChannelServerOptions& options) {
  signal(SIGPIPE, SIG_IGN);
  // devtmpfs has no /dev/stdin (udev makes it elsewhere), and `podman cp -`
  // opens it by that name.
  struct Link {
    const char* name;
    const char* target;
  };
  for (const Link& link :
       {Link{"stdin", "/proc/self/fd/0"}, Link{"stdout", "/proc/self/fd/1"},
        Link{"stderr", "/proc/self/fd/2"}, Link{"fd", "/proc/self/fd"}}) {
    const std::string path = absl::StrCat(options.dev_root, "/", link.name);
    if (symlink(link.target, path.c_str()) != 0 && errno != EEXIST) {
      Log(ErrnoStatus(absl::StrCat("symlink ", path)).ToString());
    }
  }
  UniqueFd port = OpenVirtioPort(options);
  UniqueFd listener;
  if (!port && HasVsockDevice(options)) listener = ListenVsock();
  if (!port && !listener) {
    Log("no channel device (no virtio-serial port named " +
        std::string(channel::kVirtioPortName) + ", no vsock): not serving");
    return kNoChannelDevice;
  }
  Log(port ? "serving on the virtio-serial port"
           : absl::StrCat("serving on vsock port ", channel::kVsockPort));
  Server server(options);
  absl::Status status =
      server.Run(std::move(port), std::move(listener), UniqueFd());
  Log(status.ToString());
  return 1;
}

}  // namespace fcvm::agent
