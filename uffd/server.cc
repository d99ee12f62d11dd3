#include "uffd/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "uffd/handshake.h"

namespace fcvm::uffd {
namespace {

constexpr uint64_t kListenerTag = 1;
constexpr uint64_t kControlTag = 2;
constexpr uint64_t kSignalTag = 3;
// Pending handshakes are tagged from 16 up (Server::next_tag_).

// Room for a few descriptors: more than one is refused, but they must be
// received (and closed) to be counted.
constexpr int kMaxFds = 8;

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// What the descriptor is, as /proc says ("anon_inode:[userfaultfd]").
std::string FdKind(int fd) {
  char target[256];
  const ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), target,
                             sizeof(target) - 1);
  return n > 0 ? std::string(target, n) : "unknown";
}

}  // namespace

struct Server::Pending {
  uint64_t tag;
  UniqueFd socket;
  pid_t pid = 0;
  UniqueFd pidfd;
  absl::Time deadline;
};

void Server::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "fcvm-uffd: %s\n", line.c_str());
  }
}

Server::Server(ServerOptions options, MemoryFile memory)
    : options_(std::move(options)), memory_(std::move(memory)) {}

Server::~Server() {
  Stop();
  for (auto& loop : loops_) loop->Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (!options_.socket_path.empty() && listener_) {
    unlink(options_.socket_path.c_str());
  }
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.threads < 1) options.threads = 1;
  ASSIGN_OR_RETURN(MemoryFile memory, MemoryFile::Open(options.memory_file));
  if (options.working_set_path.empty()) {
    options.working_set_path = WorkingSetPath(options.memory_file);
  }
  std::unique_ptr<Server> server(
      new Server(std::move(options), std::move(memory)));
  const ServerOptions& o = server->options_;
  if (o.prefetch) {
    absl::StatusOr<std::optional<WorkingSet>> loaded = LoadWorkingSet(
        o.working_set_path, server->memory_.size(), server->memory_.mtime_ns());
    if (!loaded.ok()) {
      server->Log(absl::StrCat("ignoring the working set: ",
                               loaded.status().message()));
    } else if (loaded->has_value()) {
      server->working_set_ = std::move(**loaded);
      server->working_set_offsets_.assign(
          server->working_set_->page_offsets().begin(),
          server->working_set_->page_offsets().end());
    }
  }
  if (!server->working_set_.has_value() &&
      o.record_window > absl::ZeroDuration()) {
    server->recorder_ = std::make_unique<WorkingSetRecorder>(
        o.working_set_path, server->memory_.size(), server->memory_.mtime_ns(),
        o.record_window);
  }
  ASSIGN_OR_RETURN(server->listener_,
                   ListenUnixStream(o.socket_path, 0600, "memory server"));
  // Accept() takes every waiting connection, then must not block.
  const int flags = fcntl(server->listener_.get(), F_GETFL);
  if (fcntl(server->listener_.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("memory server: O_NONBLOCK");
  }
  server->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  server->control_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->epoll_ || !server->control_) {
    return ErrnoStatus("memory server: epoll/eventfd");
  }
  auto watch = [&](int fd, uint64_t tag) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = tag;
    return epoll_ctl(server->epoll_.get(), EPOLL_CTL_ADD, fd, &event) == 0;
  };
  if (!watch(server->listener_.get(), kListenerTag) ||
      !watch(server->control_.get(), kControlTag) ||
      (o.signal_fd >= 0 && !watch(o.signal_fd, kSignalTag))) {
    return ErrnoStatus("memory server: epoll_ctl");
  }
  FaultLoop::Options loop_options;
  loop_options.recorder = server->recorder_.get();
  Server* self = server.get();
  loop_options.on_leave = [self](const ServedVm& vm, const std::string& why) {
    self->Leave(vm, why);
  };
  loop_options.log = [self](const std::string& line) { self->Log(line); };
  for (int i = 0; i < o.threads; ++i) {
    server->loops_.push_back(
        std::make_unique<FaultLoop>(server->memory_, loop_options));
  }
  for (auto& loop : server->loops_) {
    server->threads_.emplace_back([l = loop.get()] { l->Run(); });
  }
  server->Log(absl::StrFormat(
      "serving %s (%d bytes) on %s, %d threads; %s", o.memory_file,
      server->memory_.size(), o.socket_path, o.threads,
      server->working_set_.has_value()
          ? absl::StrCat("prefetching a working set of ",
                         server->working_set_offsets_.size(), " pages")
      : server->recorder_ != nullptr
          ? absl::StrCat("recording the first VM's working set for ",
                         absl::FormatDuration(o.record_window))
          : "no working set"));
  return server;
}

void Server::Stop() {
  stop_ = true;
  if (control_) {
    const uint64_t one = 1;
    (void)!write(control_.get(), &one, sizeof(one));
  }
}

size_t Server::vm_count() const {
  size_t n = 0;
  for (const auto& loop : loops_) n += loop->vm_count();
  return n;
}

size_t Server::working_set_pages() const { return working_set_offsets_.size(); }

std::vector<std::string> Server::Describe() const {
  std::vector<std::string> lines;
  for (const auto& loop : loops_) {
    for (std::string& line : loop->Describe()) lines.push_back(std::move(line));
  }
  return lines;
}

void Server::Leave(const ServedVm& vm, const std::string& why) {
  Log(absl::StrFormat("vm %d pid %d left (%s) after %s: %s", vm.id, vm.pid, why,
                      absl::FormatDuration(absl::Trunc(
                          absl::Now() - vm.connected, absl::Milliseconds(1))),
                      vm.stats.ToString()));
  const uint64_t one = 1;
  (void)!write(control_.get(), &one, sizeof(one));
}

void Server::Accept() {
  for (;;) {
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr,
                        SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) return;  // EAGAIN, or a peer that left first.
    auto pending = std::make_unique<Pending>();
    ucred cred = {};
    socklen_t length = sizeof(cred);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
      pending->pid = cred.pid;
      // Taken now, while the peer is connected: its exit ends its VM.
      pending->pidfd.reset(PidfdOpen(cred.pid));
    }
    pending->tag = next_tag_++;
    pending->socket = std::move(fd);
    pending->deadline = absl::Now() + options_.handshake_timeout;
    epoll_event event = {};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u64 = pending->tag;
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pending->socket.get(), &event);
    pending_.push_back(std::move(pending));
  }
}

void Server::Handshake(Pending& pending) {
  auto refuse = [&](const std::string& why) {
    Log(absl::StrCat("refused the handshake from pid ", pending.pid, ": ",
                     why));
  };
  std::string buffer(kMaxHandshakeBytes + 1, '\0');
  iovec iov = {buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t got =
      recvmsg(pending.socket.get(), &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (got < 0 && errno == EAGAIN) return;  // Not yet.
  // Whatever arrived is closed on every refusal below.
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr;
       c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; ++i) fds.emplace_back(data[i]);
  }
  pending.deadline = absl::InfinitePast();  // Done with it, whatever follows.
  if (got < 0) return refuse(absl::StrCat("recvmsg: ", strerror(errno)));
  if (got == 0) return refuse("it closed the connection without a handshake");
  if (message.msg_flags & MSG_CTRUNC) {
    return refuse(absl::StrCat("it sent more than ", kMaxFds,
                               " file descriptors; exactly one (the uffd) "
                               "is expected"));
  }
  if (fds.empty()) return refuse("no file descriptor came with it (the uffd)");
  if (fds.size() > 1) {
    return refuse(absl::StrCat(fds.size(),
                               " file descriptors came with it; "
                               "exactly one (the uffd) is expected"));
  }
  if (const std::string kind = FdKind(fds[0].get());
      kind != "anon_inode:[userfaultfd]") {
    return refuse(
        absl::StrCat("the descriptor is not a userfaultfd but ", kind));
  }
  if (static_cast<size_t>(got) > kMaxHandshakeBytes) {
    return refuse(absl::StrCat("the message is longer than ",
                               kMaxHandshakeBytes, " bytes"));
  }
  if (pending.pid > 0 && !pending.pidfd) {
    // Gone before we could watch it (pidfd_open failed): nobody to serve,
    // and nothing would ever tell us it left.
    return refuse("its process exited before its handshake was read");
  }
  absl::StatusOr<std::vector<MemoryRegion>> regions =
      ParseHandshake(absl::string_view(buffer.data(), got), memory_.size());
  if (!regions.ok()) return refuse(std::string(regions.status().message()));
  absl::StatusOr<RegionTable> table = RegionTable::Create(std::move(*regions));
  if (!table.ok()) return refuse(std::string(table.status().message()));

  auto vm = std::make_unique<ServedVm>(std::move(*table));
  vm->id = next_id_++;
  vm->pid = pending.pid;
  vm->uffd = std::move(fds[0]);
  vm->pidfd = std::move(pending.pidfd);
  vm->connected = absl::Now();
  std::string how = "on demand";
  if (!working_set_.has_value() && options_.prefetch && recorder_ != nullptr &&
      recorder_->finished()) {
    // Recorded by an earlier VM of this run: from now on, prefetched.
    absl::StatusOr<std::optional<WorkingSet>> loaded = LoadWorkingSet(
        options_.working_set_path, memory_.size(), memory_.mtime_ns());
    if (loaded.ok() && loaded->has_value()) {
      working_set_ = std::move(**loaded);
      working_set_offsets_.assign(working_set_->page_offsets().begin(),
                                  working_set_->page_offsets().end());
    }
  }
  if (working_set_.has_value()) {
    vm->prefetch =
        PlanPrefetch(vm->regions, *working_set_, options_.batch_bytes);
    vm->working_set = working_set_offsets_;
    how = absl::StrCat("prefetching ", working_set_offsets_.size(),
                       " pages in ", vm->prefetch.size(), " runs");
  } else if (recorder_ != nullptr && recorder_->Start(vm->pid)) {
    vm->recording = true;
    how = absl::StrCat("recording its working set for ",
                       absl::FormatDuration(options_.record_window));
  }
  Log(absl::StrFormat("vm %d pid %d: %d region(s), %d MiB, %s", vm->id, vm->pid,
                      vm->regions.regions().size(),
                      vm->regions.total_bytes() >> 20, how));
  ++served_;
  FaultLoop* least = loops_[0].get();
  for (auto& loop : loops_) {
    if (loop->vm_count() < least->vm_count()) least = loop.get();
  }
  least->Add(std::move(vm));
}

absl::Status Server::Run() {
  epoll_event events[32];
  while (!stop_) {
    // Wake for the nearest handshake deadline.
    absl::Time next = absl::InfiniteFuture();
    for (const auto& p : pending_) next = std::min(next, p->deadline);
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(next - absl::Now()) + 1, 0, 1 << 30));
    }
    const int n = epoll_wait(epoll_.get(), events, 32, timeout_ms);
    if (n < 0 && errno != EINTR)
      return ErrnoStatus("memory server: epoll_wait");
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenerTag) {
        Accept();
      } else if (tag == kControlTag) {
        uint64_t count;
        (void)!read(control_.get(), &count, sizeof(count));
      } else if (tag == kSignalTag) {
        signalfd_siginfo info;
        if (read(options_.signal_fd, &info, sizeof(info)) != sizeof(info)) {
          continue;
        }
        if (info.ssi_signo == SIGUSR1) {
          const std::vector<std::string> lines = Describe();
          Log(absl::StrCat(lines.size(), " VM(s) being served"));
          for (const std::string& line : lines) Log(line);
        } else {
          Log(absl::StrCat("stopping: ", strsignal(info.ssi_signo)));
          stop_ = true;
        }
      } else {
        for (auto& p : pending_) {
          if (p->tag == tag) Handshake(*p);
        }
      }
    }
    // Handshakes done or overdue go.
    const absl::Time now = absl::Now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending& p = **it;
      if (p.deadline == absl::InfinitePast() || p.deadline <= now) {
        if (p.deadline != absl::InfinitePast()) {
          Log(absl::StrCat("refused the handshake from pid ", p.pid,
                           ": nothing arrived within ",
                           absl::FormatDuration(options_.handshake_timeout)));
        }
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.socket.get(), nullptr);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (options_.exit_when_idle && served_ > 0 && vm_count() == 0 &&
        pending_.empty()) {
      Log("the last VM has gone: exiting");
      break;
    }
  }
  for (auto& loop : loops_) loop->Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  return absl::OkStatus();
}

int DefaultThreads() {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cpus, 1, 4);
}

absl::Status ServeUntilSignalled(ServerOptions options) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGUSR1, SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  UniqueFd signal_fd(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd) return ErrnoStatus("memory server: signalfd");
  signal(SIGPIPE, SIG_IGN);
  options.signal_fd = signal_fd.get();
  ASSIGN_OR_RETURN(std::unique_ptr<Server> server,
                   Server::Create(std::move(options)));
  return server->Run();
}

}  // namespace fcvm::uffd
