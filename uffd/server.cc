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
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "uffd/handshake.h"

// Linux 6.5+; glibc 2.36 does not name it yet.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace fcvm::uffd {
namespace {

constexpr uint64_t kListenerTag = 1;
constexpr uint64_t kControlTag = 2;
constexpr uint64_t kSignalTag = 3;
// Pending handshakes are tagged from 16 up (Server::next_tag_).

// Room for a few descriptors: more than one is refused, but they must be
// received (and closed) to be counted.
constexpr int kMaxFds = 8;

// Out of descriptors: how long the listener is left alone before accept
// is tried again (the connections wait in the backlog meanwhile).
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);

// Unknown handshake field names remembered (and so logged), at most: a
// peer sending new names every time cannot grow the server.
constexpr size_t kMaxUnknownFieldNames = 64;

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
  pid_t pid = 0;  // SO_PEERCRED: 0 if the peer's pid namespace is not ours.
  UniqueFd pidfd;
  absl::Time deadline;
  std::string received;
  std::vector<UniqueFd> fds;   // From the first part's SCM_RIGHTS.
  bool fds_truncated = false;  // MSG_CTRUNC: some could not be received.
  bool late_fds = false;       // Descriptors with a later part.
  int reads = 0;               // Parts received.
};

void Server::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "fcvm-uffd: %s\n", line.c_str());
  }
}

void Server::WakeUp() {
  const uint64_t one = 1;
  (void)!write(control_.get(), &one, sizeof(one));
}

Server::Server(ServerOptions options, MemoryFile memory)
    : options_(std::move(options)), memory_(std::move(memory)) {}

Server::~Server() {
  Stop();
  for (auto& loop : loops_) loop->Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (writer_.joinable()) writer_.join();
  if (listener_) {
    // Closed first: a socket something still listens on is not ours. Only
    // our own is removed: a later server may have put its own there.
    listener_.reset();
    (void)RemoveUnixSocketIfSame(options_.socket_path, socket_id_);
  }
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    ServerOptions options) {
  if (options.threads < 1) options.threads = 1;
  if (options.max_pending_handshakes < 1) options.max_pending_handshakes = 1;
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
      server->plan_ =
          std::make_shared<const PrefetchPlan>(**loaded, o.batch_bytes);
      server->plan_pages_ = server->plan_->pages();
    }
  }
  if (server->plan_ == nullptr && o.record_window > absl::ZeroDuration()) {
    server->recorder_ = std::make_unique<WorkingSetRecorder>(
        server->memory_.size(), server->memory_.mtime_ns(), o.record_window);
  }
  ASSIGN_OR_RETURN(server->listener_,
                   ListenUnixStream(o.socket_path, 0600, "memory server",
                                    &server->socket_id_));
  // Accept() takes every waiting connection, then must not block.
  const int flags = fcntl(server->listener_.get(), F_GETFL);
  if (fcntl(server->listener_.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("memory server: O_NONBLOCK");
  }
  server->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!server->epoll_) return ErrnoStatus("memory server: epoll_create1");
  server->control_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->control_) return ErrnoStatus("memory server: eventfd");
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
  Server* self = server.get();
  for (int i = 0; i < o.threads; ++i) {
    FaultLoop::Options loop_options;
    loop_options.name = absl::StrCat("fault loop ", i + 1);
    loop_options.recorder = server->recorder_.get();
    loop_options.kernel = o.kernel;
    loop_options.on_leave = [self](const ServedVm& vm, const std::string& why) {
      self->Leave(vm, why);
    };
    loop_options.on_file_changed = [self](const std::string& what) {
      self->MemoryFileChanged(what);
    };
    ASSIGN_OR_RETURN(std::unique_ptr<FaultLoop> loop,
                     FaultLoop::Create(server->memory_, loop_options));
    server->loops_.push_back(std::move(loop));
  }
  for (size_t i = 0; i < server->loops_.size(); ++i) {
    server->threads_.emplace_back([self, i, l = server->loops_[i].get()] {
      if (absl::Status ran = l->Run(); !ran.ok()) self->LoopDied(i, ran);
    });
  }
  server->next_file_check_ = absl::Now() + o.file_check_interval;
  server->Log(absl::StrFormat(
      "serving %s (%d bytes) on %s, %d threads; %s", o.memory_file,
      server->memory_.size(), o.socket_path, o.threads,
      server->plan_ != nullptr ? absl::StrCat("prefetching a working set of ",
                                              server->plan_->pages(), " pages")
      : server->recorder_ != nullptr
          ? absl::StrCat("recording the first VM's working set for ",
                         absl::FormatDuration(o.record_window))
          : "no working set"));
  return server;
}

void Server::Stop() {
  stop_ = true;
  if (control_) WakeUp();
}

size_t Server::vm_count() const {
  size_t n = 0;
  for (const auto& loop : loops_) n += loop->vm_count();
  return n;
}

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
  // The recording ends with its VM: the server's thread writes it.
  if (vm.recording) recorded_vm_left_ = true;
  WakeUp();
}

void Server::LoopDied(size_t index, const absl::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    dead_loops_.push_back(std::string(status.message()));
  }
  Log(absl::StrFormat("fault loop %d of %d died (%s): it is given no more VMs",
                      index + 1, loops_.size(), status.message()));
  WakeUp();
}

void Server::MemoryFileChanged(const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_) return;
  frozen_ = true;
  refuse_new_vms_ = absl::StrCat("the memory file ", options_.memory_file,
                                 " changed while served (", what, ")");
  for (auto& loop : loops_) loop->Freeze();
  Log(absl::StrCat(
      refuse_new_vms_,
      ": no longer serving faults or prefetching rather than serve wrong "
      "bytes; the VMs being served wait on their next fault until they are "
      "stopped, and new VMs are refused"));
}

std::string Server::CheckMemoryFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (frozen_) return refuse_new_vms_;
  }
  absl::StatusOr<FileChange> change = memory_.Check();
  if (change.ok() && change->in_place) MemoryFileChanged(change->what);
  std::lock_guard<std::mutex> lock(mu_);
  if (change.ok() && change->replaced && refuse_new_vms_.empty()) {
    refuse_new_vms_ =
        absl::StrCat("the memory file ", options_.memory_file,
                     " was replaced while served (", change->what, ")");
    Log(absl::StrCat(refuse_new_vms_,
                     ": the VMs being served keep the bytes they were "
                     "restored from; new VMs are refused"));
  }
  if (!refuse_new_vms_.empty()) return refuse_new_vms_;
  if (!change.ok()) return std::string(change.status().message());
  return "";
}

void Server::PauseListener(int error) {
  epoll_event event = {};
  event.events = 0;  // Still registered, reporting nothing.
  event.data.u64 = kListenerTag;
  (void)epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &event);
  listener_paused_until_ = absl::Now() + kAcceptPause;
  ++accept_pauses_;
  if (!accept_failing_) {
    accept_failing_ = true;
    Log(absl::StrCat("accept on ", options_.socket_path, ": ", strerror(error),
                     ": not accepting for ", absl::FormatDuration(kAcceptPause),
                     " at a time until it works again (connections wait in "
                     "the backlog)"));
  }
}

void Server::ResumeListener() {
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = kListenerTag;
  (void)epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &event);
  listener_paused_until_ = absl::InfinitePast();
}

void Server::Accept() {
  for (;;) {
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr,
                        SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (error == EINTR || error == ECONNABORTED) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM (or anything else): the listener
      // stays readable, so retrying now would spin.
      PauseListener(error);
      return;
    }
    if (accept_failing_) {
      Log(absl::StrCat("accepting connections again (after ", accept_pauses_,
                       " pause(s))"));
      accept_failing_ = false;
      accept_pauses_ = 0;
    }
    if (pending_.size() >=
        static_cast<size_t>(options_.max_pending_handshakes)) {
      // Closed at once: the peer sees the connection end.
      if (!at_pending_cap_) {
        at_pending_cap_ = true;
        Log(absl::StrCat(pending_.size(),
                         " handshakes are pending (the most allowed, "
                         "--max_pending_handshakes): refusing new "
                         "connections until some finish"));
      }
      ++refused_at_cap_;
      continue;
    }
    auto pending = std::make_unique<Pending>();
    ucred cred = {};
    socklen_t length = sizeof(cred);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
      pending->pid = cred.pid;
    }
    // The exit watch, taken now while the peer is connected. SO_PEERPIDFD
    // names the very process that connected, whatever pid namespace it is
    // in; pidfd_open of a pid is the fallback before Linux 6.5 (racy if
    // the pid was reused, impossible if the pid is 0).
    int pidfd = -1;
    length = sizeof(pidfd);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) == 0 &&
        pidfd >= 0) {
      pending->pidfd.reset(pidfd);
    } else if (pending->pid > 0) {
      pending->pidfd.reset(PidfdOpen(pending->pid));
    }
    pending->tag = next_tag_++;
    pending->socket = std::move(fd);
    pending->deadline = absl::Now() + options_.handshake_timeout;
    epoll_event event = {};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u64 = pending->tag;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pending->socket.get(), &event) !=
        0) {
      Refuse(*pending,
             absl::StrCat("cannot watch its socket: ", strerror(errno)));
      continue;
    }
    const uint64_t tag = pending->tag;
    pending_.emplace(tag, std::move(pending));
  }
}

void Server::Refuse(const Pending& pending, const std::string& why) {
  Log(absl::StrCat("refused the handshake from pid ", pending.pid, ": ", why));
}

bool Server::ReadHandshake(Pending& pending) {
  for (;;) {
    // Into one buffer for every connection, then appended: a pending
    // handshake holds only what it has received.
    read_buffer_.resize(kMaxHandshakeBytes + 1 - pending.received.size());
    iovec iov = {read_buffer_.data(), read_buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr message = {};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    const ssize_t got = recvmsg(pending.socket.get(), &message,
                                MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    const int error = errno;
    if (got < 0) {
      if (error == EINTR) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) return false;  // Not yet.
      Refuse(pending, absl::StrCat("recvmsg: ", strerror(error)));
      return true;
    }
    pending.received.append(read_buffer_.data(), got);
    // Whatever arrived is closed on every refusal.
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr;
         c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; ++i) {
        UniqueFd fd(data[i]);
        if (pending.reads == 0) {
          pending.fds.push_back(std::move(fd));
        } else {
          pending.late_fds = true;
        }
      }
    }
    if (message.msg_flags & MSG_CTRUNC) pending.fds_truncated = true;
    ++pending.reads;
    if (got == 0) break;  // Closed: judged on what came.
    if (pending.received.size() > kMaxHandshakeBytes ||
        HandshakeComplete(pending.received)) {
      break;
    }
  }
  Handshake(pending);
  return true;
}

void Server::Handshake(Pending& pending) {
  auto refuse = [&](const std::string& why) { Refuse(pending, why); };
  const std::vector<UniqueFd>& fds = pending.fds;
  if (pending.received.empty()) {
    return refuse("it closed the connection without a handshake");
  }
  if (pending.fds_truncated) {
    return refuse(absl::StrCat(
        "the file descriptors that came with it could not all be received "
        "(more than ",
        kMaxFds,
        ", or this server is out of descriptors); exactly one (the uffd) is "
        "expected"));
  }
  if (pending.late_fds) {
    return refuse(
        "a file descriptor came after the first part of its handshake; the "
        "uffd comes with the first");
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
  if (pending.received.size() > kMaxHandshakeBytes) {
    return refuse(absl::StrCat("the message is longer than ",
                               kMaxHandshakeBytes, " bytes"));
  }
  if (!HandshakeComplete(pending.received)) {
    // Only a closed connection ends an incomplete handshake here.
    return refuse(absl::StrCat("it closed the connection after ",
                               pending.received.size(),
                               " bytes of an incomplete handshake"));
  }
  if (const std::string changed = CheckMemoryFile(); !changed.empty()) {
    return refuse(absl::StrCat(changed, ": not serving new VMs"));
  }
  if (std::none_of(loops_.begin(), loops_.end(),
                   [](const auto& loop) { return !loop->dead(); })) {
    return refuse("no fault loop is alive to serve it");
  }
  absl::StatusOr<HandshakeBody> body =
      ParseHandshakeBody(pending.received, memory_.size());
  if (!body.ok()) return refuse(std::string(body.status().message()));
  absl::StatusOr<RegionTable> table = RegionTable::Create(body->regions);
  if (!table.ok()) return refuse(std::string(table.status().message()));
  // How the VM's departure will be seen: its pidfd, and its hang-up if it
  // is a Firecracker that keeps the socket (1.12+, which sends page_size);
  // an older one closes it right after the handshake.
  if (!pending.pidfd) {
    if (pending.pid > 0) {
      // pidfd_open failed: gone before we could watch it.
      return refuse("its process exited before its handshake was read");
    }
    if (!body->sends_page_size) {
      return refuse(
          "nothing would tell when it exits: its pid is not visible from "
          "this pid namespace, SO_PEERPIDFD gave no pidfd (Linux 6.5+), and "
          "a Firecracker before 1.12 (no page_size field) closes its socket "
          "after the handshake");
    }
  }
  std::vector<std::string> new_fields;
  for (const std::string& name : body->unknown_fields) {
    if (unknown_fields_seen_.size() < kMaxUnknownFieldNames &&
        unknown_fields_seen_.insert(name).second) {
      new_fields.push_back(name);
    }
  }

  auto vm = std::make_unique<ServedVm>(std::move(*table));
  vm->id = next_id_++;
  vm->pid = pending.pid;
  vm->uffd = std::move(pending.fds[0]);
  vm->pidfd = std::move(pending.pidfd);
  // Out of the server's epoll before a loop takes it (or it closes here).
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, pending.socket.get(), nullptr);
  if (body->sends_page_size) vm->connection = std::move(pending.socket);
  vm->connected = absl::Now();
  if (!new_fields.empty()) {
    Log(absl::StrCat("vm ", vm->id, " pid ", vm->pid,
                     ": the handshake has fields this server does not know, "
                     "ignored as Firecracker's own handler does (each name "
                     "logged once): ",
                     absl::StrJoin(new_fields, ", ")));
  }
  std::string how = "on demand";
  if (plan_ != nullptr) {
    vm->plan = plan_;
    how = absl::StrCat("prefetching ", plan_->pages(), " pages in ",
                       plan_->runs().size(), " runs");
  } else if (recorder_ != nullptr &&
             recorder_->Start(vm->id, vm->pid, vm->connected)) {
    vm->recording = true;
    how = absl::StrCat("recording its working set for ",
                       absl::FormatDuration(options_.record_window));
  }
  ++served_;
  while (vm != nullptr) {
    size_t least = loops_.size();
    for (size_t i = 0; i < loops_.size(); ++i) {
      if (loops_[i]->dead()) continue;
      if (least == loops_.size() ||
          loops_[i]->vm_count() < loops_[least]->vm_count()) {
        least = i;
      }
    }
    if (least == loops_.size()) {
      // Run() stops with the reason at its next turn.
      Log(absl::StrFormat("vm %d pid %d: dropped, no fault loop is alive",
                          vm->id, vm->pid));
      return;
    }
    Log(absl::StrFormat("vm %d pid %d: %d region(s), %d MiB, %s, fault loop %d",
                        vm->id, vm->pid, vm->regions.regions().size(),
                        vm->regions.total_bytes() >> 20, how, least + 1));
    // Back if that loop died meanwhile: then another.
    vm = loops_[least]->Add(std::move(vm));
  }
}

void Server::MaybeCloseRecording(absl::Time now) {
  if (recorder_ == nullptr || recorder_->vm_id() == 0 || recorder_->closed()) {
    return;
  }
  if (now < recorder_->deadline() && !recorded_vm_left_) return;
  std::optional<WorkingSet> set = recorder_->Close(now);
  if (!set.has_value()) return;
  const uint64_t from = recorder_->vm_id();
  if (set->page_offsets_size() == 0) {
    Log(absl::StrCat("working set: vm ", from,
                     " faulted no page in its window; nothing recorded"));
    return;
  }
  if (options_.prefetch) {
    // VMs that come from now on get it, before it is even on disk.
    plan_ = std::make_shared<const PrefetchPlan>(*set, options_.batch_bytes);
    plan_pages_ = plan_->pages();
  }
  // fsync'd: on a thread of its own, so neither the faults nor the
  // handshakes wait for the disk.
  writer_ = std::thread([this, set = std::move(*set), from] {
    if (absl::Status written = WriteWorkingSet(options_.working_set_path, set);
        !written.ok()) {
      Log(absl::StrCat("working set not written: ", written.message()));
    } else {
      Log(absl::StrCat("working set: ", set.page_offsets_size(),
                       " pages written, recorded from vm ", from));
    }
  });
}

[[nodiscard]] absl::Status Server::Run() {
  epoll_event events[32];
  absl::Status result;
  if (options_.listening) options_.listening();
  while (!stop_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dead_loops_.size() == loops_.size()) {
        result = absl::InternalError(absl::StrCat(
            "memory server: every fault loop has died, no VM can be served (",
            absl::StrJoin(dead_loops_, "; "), ")"));
        Log(std::string(result.message()));
        break;
      }
    }
    // Wake for the nearest deadline: a handshake's, the accept pause's,
    // the recording window's, the next check of the memory file.
    const absl::Time now = absl::Now();
    absl::Time next = next_file_check_;
    if (!pending_.empty()) {
      next = std::min(next, pending_.begin()->second->deadline);
    }
    if (listener_paused_until_ != absl::InfinitePast()) {
      next = std::min(next, listener_paused_until_);
    }
    if (recorder_ != nullptr && !recorder_->closed()) {
      next = std::min(next, recorder_->deadline());
    }
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(next - now) + 1, 0, 1 << 30));
    }
    const int n = epoll_wait(epoll_.get(), events, 32, timeout_ms);
    if (n < 0 && errno != EINTR) {
      result = ErrnoStatus("memory server: epoll_wait");
      break;
    }
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
      } else if (auto it = pending_.find(tag); it != pending_.end()) {
        if (ReadHandshake(*it->second)) pending_.erase(it);
      }
    }
    // Handshakes overdue go (the oldest first: they are in accept order).
    const absl::Time after = absl::Now();
    while (!pending_.empty() && pending_.begin()->second->deadline <= after) {
      const Pending& p = *pending_.begin()->second;
      Refuse(
          p,
          p.received.empty()
              ? absl::StrCat("nothing arrived within ",
                             absl::FormatDuration(options_.handshake_timeout))
              : absl::StrCat("its handshake was still incomplete after ",
                             absl::FormatDuration(options_.handshake_timeout),
                             " (", p.received.size(), " bytes)"));
      pending_.erase(pending_.begin());
    }
    if (at_pending_cap_ &&
        pending_.size() <
            static_cast<size_t>(options_.max_pending_handshakes)) {
      Log(absl::StrCat("accepting handshakes again; refused ", refused_at_cap_,
                       " connection(s) at the cap"));
      at_pending_cap_ = false;
      refused_at_cap_ = 0;
    }
    if (listener_paused_until_ != absl::InfinitePast() &&
        after >= listener_paused_until_) {
      ResumeListener();
    }
    MaybeCloseRecording(after);
    if (after >= next_file_check_) {
      (void)CheckMemoryFile();
      next_file_check_ = after + options_.file_check_interval;
      if (options_.exit_when_unused && vm_count() == 0 && pending_.empty() &&
          options_.exit_when_unused()) {
        Log("no VM is served and none is to come: exiting");
        break;
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
  if (writer_.joinable()) writer_.join();
  return result;
}

int DefaultThreads() {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cpus, 1, 4);
}

[[nodiscard]] absl::Status ServeUntilSignalled(ServerOptions options) {
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
