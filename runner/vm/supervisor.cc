#include "runner/vm/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/status.pb.h"
#include "base/file.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "channel/names.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"
#include "runner/storage/disk.h"
#include "runner/vm/channel_hub.h"
#include "runner/vm/console.h"
#include "runner/vm/control.h"
#include "runner/vm/log_file.h"

namespace fcvm::runner {
namespace {

using agent::AgentEvent;
using Clock = std::chrono::steady_clock;

// How long the pipes may stay open after the VMM exited (a process it
// started may hold them): then the supervisor stops reading.
constexpr auto kDrainTime = std::chrono::seconds(2);
constexpr size_t kMaxControlClients = 8;

int64_t WallNowMs() { return absl::ToUnixMillis(absl::Now()); }

struct ControlClient {
  UniqueFd fd;
  std::string buffer;
};

class Supervisor {
 public:
  Supervisor(StateStore& store, VmState state, Lease lease, Vmm& vmm,
             const SuperviseOptions& options)
      : store_(store),
        state_(std::move(state)),
        lease_(std::move(lease)),
        vmm_(vmm),
        options_(options) {}

  int Run();

 private:
  const std::string& name() const { return state_.name(); }
  const std::string& dir() const { return state_.dir(); }
  void Progress(const std::string& text) {
    if (options_.progress) {
      std::fprintf(stderr, "fcvm: %s: %s\n", name().c_str(), text.c_str());
    }
  }
  int64_t WallMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                 start_)
        .count();
  }
  // One state write; the supervisor keeps going if the store refuses (the
  // VM matters more than its record), but says so.
  void Record(const std::function<void(VmState&)>& change) {
    absl::StatusOr<VmState> written = store_.Update(name(), change);
    if (written.ok()) {
      state_ = *written;
    } else {
      Progress(absl::StrCat("state not written: ", written.status().message()));
    }
  }
  void Phase(const std::string& phase, int64_t guest_ms,
             std::optional<VmState::Phase> to = std::nullopt) {
    const int64_t wall = WallMs();
    Record([&](VmState& s) {
      PhaseTime* p = s.add_phases();
      p->set_phase(phase);
      p->set_wall_ms(wall);
      p->set_guest_ms(guest_ms);
      if (to.has_value()) s.set_phase(*to);
    });
    Progress(absl::StrFormat(
        "%-18s %6.2f s%s", phase, wall / 1000.0,
        guest_ms > 0
            ? absl::StrFormat("  (guest uptime %.2f s)", guest_ms / 1000.0)
            : ""));
  }
  void Ready() {
    if (reported_) return;
    reported_ = true;
    StartCacheFill();
    if (options_.on_ready) options_.on_ready(state_);
  }
  void StartCacheFill() {
    if (options_.cache_fill_argv.empty() || state_.cache().key().empty() ||
        state_.cache().hit() || stopping_) {
      return;
    }
    SubprocessOptions fill;
    fill.argv = options_.cache_fill_argv;
    fill.argv.insert(fill.argv.end(), {"cache", "fill", name()});
    absl::StatusOr<Subprocess> started = Subprocess::Start(std::move(fill));
    if (started.ok()) {
      fill_.emplace(std::move(*started));
    } else {
      Progress(absl::StrCat("startup cache: ", started.status().message()));
    }
  }
  void Failed(const std::string& error) {
    if (reported_) return;
    reported_ = true;
    if (options_.on_failed) options_.on_failed(error);
  }

  void OnEvent(const AgentEvent& event);
  void RequestStop(const std::string& why);
  void OnControl(ControlClient& client);
  ControlReply Control(const ControlRequest& request);
  ControlReply TakeSnapshot(const ControlRequest::Snapshot& request);
  // The end before the VMM ran: network down, state FAILED, 125.
  int FailBeforeStart(const absl::Status& status);
  // Tears down, writes the last state, returns the exit code.
  int Finish(const std::string& last_words);

  StateStore& store_;
  VmState state_;
  Lease lease_;
  Vmm& vmm_;
  SuperviseOptions options_;
  Clock::time_point start_ = Clock::now();
  std::optional<ConsoleReader> console_;
  std::optional<RotatingLog> vmm_log_;
  std::optional<net::VmNetwork> network_;
  std::optional<Subprocess> vmm_process_;
  // The control channel's host end (channel_hub.h); it ends before the VM
  // is recorded as ended.
  UniqueFd channel_listener_;
  std::unique_ptr<ChannelHub> hub_;
  // `fcvm cache fill` of this VM, while it runs.
  std::optional<Subprocess> fill_;
  bool reported_ = false;
  bool stopping_ = false;
  bool paused_ = false;
  VmState::Phase phase_before_pause_ = VmState::BOOTING;
  std::optional<Clock::time_point> stop_deadline_;
  std::optional<int> exit_code_;
  std::string error_;
};

void Supervisor::OnEvent(const AgentEvent& event) {
  const int64_t guest = static_cast<int64_t>(event.uptime_ms());
  switch (event.kind()) {
    case AgentEvent::AGENT_STARTED:
      Phase("agent up", guest);
      break;
    case AgentEvent::IDENTITY_APPLIED:
      Record([&](VmState& s) { s.set_generation(event.generation()); });
      break;
    case AgentEvent::IMAGE_READY:
      Phase("image loaded", guest);
      break;
    case AgentEvent::CONTAINER_STARTED:
      Phase("container started", guest);
      break;
    case AgentEvent::READY:
      Phase("container ready", guest,
            stopping_ ? std::optional<VmState::Phase>() : VmState::RUNNING);
      for (const PublishedPort& port : state_.ports()) {
        Progress(absl::StrCat("guest port ", port.guest_port(), "/",
                              port.protocol(),
                              " is at 127.0.0.1:", port.host_port()));
      }
      Ready();
      break;
    case AgentEvent::EXITED:
      exit_code_ = event.exit_code();
      Progress(absl::StrCat("container ", event.message()));
      break;
    case AgentEvent::ERROR:
      error_ = event.message();
      Progress(absl::StrCat("error: ", event.message()));
      Record([&](VmState& s) { s.set_error(error_); });
      break;
    case AgentEvent::RESTARTING:
      Progress(event.message());
      break;
    case AgentEvent::REIDENTIFIED:
      Phase("identity applied", guest);
      Progress(event.message());
      Record([&](VmState& s) { s.set_generation(event.generation()); });
      break;
    default:
      break;
  }
}

void Supervisor::RequestStop(const std::string& why) {
  if (!vmm_process_.has_value() || vmm_process_->finished()) return;
  if (stopping_) {
    Progress("second stop request: ending the VM now");
    vmm_.ForceStop(*vmm_process_, dir());
    return;
  }
  stopping_ = true;
  Progress(absl::StrCat("stopping (", why, ")"));
  if (paused_) {
    // A paused guest cannot hear the stop request.
    if (absl::Status resumed = vmm_.Resume(dir()); !resumed.ok()) {
      Progress(absl::StrCat("resume before stop: ", resumed.message()));
    }
    paused_ = false;
  }
  Record([](VmState& s) { s.set_phase(VmState::STOPPING); });
  // The agent reads the console: it stops the container gracefully, syncs
  // and powers the VM off.
  if (absl::Status asked = WriteAll(vmm_process_->stdin_pipe().get(),
                                    "\n@fcvm stop\n", "the VM's console");
      !asked.ok()) {
    Progress(absl::StrCat("stop request: ", asked.message()));
  }
  const uint32_t grace = state_.spec().plan().stop_timeout_seconds() == 0
                             ? 10
                             : state_.spec().plan().stop_timeout_seconds();
  stop_deadline_ = Clock::now() + std::chrono::seconds(grace) +
                   absl::ToChronoMilliseconds(options_.power_off_slack);
}

ControlReply Supervisor::Control(const ControlRequest& request) {
  ControlReply reply;
  auto refuse = [&](const std::string& why) {
    reply.set_error(absl::StrCat("VM '", name(), "': ", why));
    reply.set_phase(VmState::Phase_Name(state_.phase()));
    return reply;
  };
  if (!vmm_process_.has_value() || vmm_process_->finished()) {
    return refuse("its VMM is not running");
  }
  if (stopping_) return refuse("it is stopping");
  if (request.has_set_timeout()) {
    const int64_t expires = request.set_timeout().expires_unix_ms();
    if (expires < 0) return refuse("a negative expiry time");
    Record([expires](VmState& s) { s.set_expires_unix_ms(expires); });
    Progress(expires == 0 ? std::string("timeout cleared")
                          : absl::StrCat("timeout moved to ",
                                         absl::FormatTime(
                                             absl::FromUnixMillis(expires))));
    reply.set_ok(true);
    reply.set_phase(VmState::Phase_Name(state_.phase()));
    return reply;
  }
  if (!vmm_.Capabilities().pause) {
    return refuse(absl::StrCat(vmm_.Describe(), " cannot pause a VM"));
  }
  if (request.has_snapshot()) return TakeSnapshot(request.snapshot());
  if (request.has_pause()) {
    if (!paused_) {
      if (absl::Status paused = vmm_.Pause(dir()); !paused.ok()) {
        return refuse(std::string(paused.message()));
      }
      paused_ = true;
      phase_before_pause_ = state_.phase();
      Record([](VmState& s) { s.set_phase(VmState::PAUSED); });
      Progress("paused");
    }
  } else if (request.has_resume()) {
    if (paused_) {
      if (absl::Status resumed = vmm_.Resume(dir()); !resumed.ok()) {
        return refuse(std::string(resumed.message()));
      }
      paused_ = false;
      const VmState::Phase back = phase_before_pause_;
      Record([back](VmState& s) { s.set_phase(back); });
      Progress("resumed");
    }
  }
  reply.set_ok(true);
  reply.set_phase(VmState::Phase_Name(state_.phase()));
  return reply;
}

ControlReply Supervisor::TakeSnapshot(const ControlRequest::Snapshot& request) {
  ControlReply reply;
  auto refuse = [&](const std::string& why) {
    reply.set_error(absl::StrCat("VM '", name(), "': snapshot: ", why));
    reply.set_phase(VmState::Phase_Name(state_.phase()));
    return reply;
  };
  if (!vmm_.Capabilities().snapshot) {
    return refuse(absl::StrCat(vmm_.Describe(), " cannot snapshot a VM"));
  }
  if (state_.volumes_size() > 0) {
    // Their disks would have to be copied and matched at restore too.
    return refuse("a VM with volumes (-v) cannot be snapshotted yet");
  }
  if (options_.restore.has_value()) {
    // Its RAM is its snapshot's file, mapped privately: x-ignore-shared
    // would not skip it, and nothing would freeze it.
    return refuse(absl::StrCat("a clone (of snapshot '",
                               state_.restored_from().snapshot(),
                               "') cannot be snapshotted yet"));
  }
  const bool was_paused = paused_;
  const absl::Time start = absl::Now();
  if (!paused_) {
    if (absl::Status paused = vmm_.Pause(dir()); !paused.ok()) {
      return refuse(std::string(paused.message()));
    }
  }
  auto resume = [&] {
    if (was_paused) return absl::OkStatus();
    return vmm_.Resume(dir());
  };
  absl::StatusOr<SnapshotReport> taken = vmm_.Snapshot(dir(), request.dir());
  if (!taken.ok()) {
    (void)resume();
    return refuse(std::string(taken.status().message()));
  }
  // The disk as the stopped guest left it: QEMU drained its requests at
  // the pause, and what the guest had not written yet is in the memory.
  struct stat st;
  absl::StatusOr<DiskReport> disk =
      stat(state_.disk().c_str(), &st) != 0
          ? absl::StatusOr<DiskReport>(
                ErrnoStatus(absl::StrCat("the writable disk ", state_.disk())))
          : CreateWritableDisk(absl::StrCat(request.dir(), "/", kSnapshotDisk),
                               static_cast<uint64_t>(st.st_size),
                               state_.disk());
  if (!disk.ok()) {
    (void)resume();
    return refuse(std::string(disk.status().message()));
  }
  SnapshotTaken& numbers = *reply.mutable_snapshot();
  numbers.set_state_us(absl::ToInt64Microseconds(taken->state_took));
  numbers.set_memory_us(absl::ToInt64Microseconds(taken->memory_took));
  numbers.set_memory_method(taken->memory_method);
  numbers.set_disk_us(absl::ToInt64Microseconds(disk->took));
  numbers.set_disk_method(disk->method);
  if (request.stop()) {
    paused_ = true;  // RequestStop resumes it for the agent to hear.
    RequestStop("snapshot --stop");
  } else if (absl::Status resumed = resume(); !resumed.ok()) {
    paused_ = true;
    phase_before_pause_ = state_.phase();
    Record([](VmState& s) { s.set_phase(VmState::PAUSED); });
    return refuse(
        absl::StrCat("taken, but the VM did not resume: ", resumed.message()));
  }
  numbers.set_paused_us(absl::ToInt64Microseconds(absl::Now() - start));
  Progress(absl::StrCat("snapshot written to ", request.dir(), " (paused ",
                        numbers.paused_us() / 1000, " ms)"));
  reply.set_ok(true);
  reply.set_phase(VmState::Phase_Name(state_.phase()));
  return reply;
}

void Supervisor::OnControl(ControlClient& client) {
  char buffer[1024];
  const ssize_t n = read(client.fd.get(), buffer, sizeof(buffer));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) client.buffer.append(buffer, n);
  const size_t newline = client.buffer.find('\n');
  ControlReply reply;
  if (newline != std::string::npos) {
    absl::StatusOr<ControlRequest> request =
        ParseControlRequest(client.buffer.substr(0, newline));
    if (request.ok()) {
      reply = Control(*request);
    } else {
      reply.set_error(std::string(request.status().message()));
    }
  } else if (n > 0 && client.buffer.size() <= kMaxControlLine) {
    return;  // More to come.
  } else {
    reply.set_error(n > 0 ? "control request too long" : "");
  }
  if (n != 0 || newline != std::string::npos) {
    (void)WriteAll(client.fd.get(), ControlReplyLine(reply), "control client");
  }
  client.fd.reset();  // Done: the loop drops closed clients.
}

int Supervisor::FailBeforeStart(const absl::Status& status) {
  error_ = std::string(status.message());
  Progress(error_);
  return Finish("");
}

int Supervisor::Finish(const std::string& last_words) {
  if (console_.has_value()) (void)console_->Finish();
  const bool clean = exit_code_.has_value();
  if (!clean && error_.empty()) {
    error_ =
        absl::StrCat("the VM ended before the container did (VMM ", last_words,
                     "; see ", dir(), "/", kConsoleLog, " and ", kVmmLog, ")");
    Progress(error_);
  }
  const int code = clean ? *exit_code_ : 125;
  hub_.reset();
  channel_listener_.reset();
  // Everything the VM had goes before the record says it is gone.
  if (network_.has_value()) {
    if (absl::Status down = network_->TearDown(); !down.ok()) {
      Progress(absl::StrCat("network teardown: ", down.message()));
      if (error_.empty())
        error_ = absl::StrCat("network teardown: ", down.message());
    }
  }
  // The VM's RAM (QEMU keeps it in a file) ends with the VM.
  for (const char* file :
       {"qmp.sock", "api.sock", kControlSocket, kVmMemoryFile,
        channel::kHubSocket, channel::kQemuPortSocket, "v.sock"}) {
    unlink(absl::StrCat(dir(), "/", file).c_str());
  }
  const int64_t wall = WallMs();
  // The last write; the lease goes when this process exits.
  Record([&](VmState& s) {
    s.set_phase(clean ? VmState::EXITED : VmState::FAILED);
    s.set_exit_code(code);
    if (!error_.empty()) s.set_error(error_);
    s.set_ended_unix_ms(absl::ToUnixMillis(absl::Now()));
    PhaseTime* p = s.add_phases();
    p->set_phase("vm ended");
    p->set_wall_ms(wall);
    s.set_vmm_pid(0);
    s.set_vmm_start_ticks(0);
    s.set_supervisor_pid(0);
    s.set_supervisor_start_ticks(0);
    s.mutable_network()->set_holder_pid(0);
    s.mutable_network()->set_helper_pid(0);
  });
  Progress(absl::StrFormat("%-18s %6.2f s", "vm ended", wall / 1000.0));
  if (clean && !reported_) {
    Failed(absl::StrCat("ended before it was ready: exit code ", code));
  }
  Failed(error_);
  if (state_.remove_on_exit()) {
    // --rm: nothing of the VM stays (the lease file goes with the rest).
    if (absl::Status removed = store_.Remove(name(), lease_); !removed.ok()) {
      Progress(absl::StrCat("--rm: ", removed.message()));
    }
  }
  return code;
}

int Supervisor::Run() {
  const pid_t self = getpid();
  const uint64_t ticks = StartTicks(self);
  Record([&](VmState& s) {
    s.set_supervisor_pid(self);
    s.set_supervisor_start_ticks(ticks);
  });

  const uint64_t cap = state_.log_max_bytes() == 0 ? kDefaultLogMaxBytes
                                                   : state_.log_max_bytes();
  auto open_log = [&](const char* file) {
    return RotatingLog::Open(absl::StrCat(dir(), "/", file), cap);
  };
  absl::StatusOr<RotatingLog> console = open_log(kConsoleLog);
  if (!console.ok()) return FailBeforeStart(console.status());
  absl::StatusOr<RotatingLog> container = open_log(kContainerLog);
  if (!container.ok()) return FailBeforeStart(container.status());
  absl::StatusOr<RotatingLog> vmm_log = open_log(kVmmLog);
  if (!vmm_log.ok()) return FailBeforeStart(vmm_log.status());
  console_.emplace(std::move(*console), std::move(*container),
                   [this](const AgentEvent& event) { OnEvent(event); });
  vmm_log_.emplace(std::move(*vmm_log));

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    return FailBeforeStart(ErrnoStatus("blocking the stop signals"));
  }
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals.valid()) {
    // Without it Ctrl-C and `fcvm stop` would go unheard: do not start.
    return FailBeforeStart(ErrnoStatus("signalfd for SIGTERM/SIGINT/SIGHUP"));
  }
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<UniqueFd> listener = ListenUnixStream(
      absl::StrCat(dir(), "/", kControlSocket), 0600, "the control socket");
  if (!listener.ok()) return FailBeforeStart(listener.status());
  if (fcntl(listener->get(), F_SETFL, O_NONBLOCK) != 0) {
    return FailBeforeStart(ErrnoStatus("the control socket"));
  }

  if (!state_.spec().channel().empty()) {
    // Bound here, before the hub's thread exists (the bind sets the umask).
    absl::StatusOr<UniqueFd> channel =
        ListenUnixStream(absl::StrCat(dir(), "/", channel::kHubSocket), 0600,
                         "the channel socket");
    if (!channel.ok()) return FailBeforeStart(channel.status());
    channel_listener_ = std::move(*channel);
  }

  // The network first: the VMM joins it.
  absl::StatusOr<net::VmNetwork> network =
      net::VmNetwork::SetUp(state_, options_.holder_argv);
  if (!network.ok()) return FailBeforeStart(network.status());
  network_.emplace(std::move(*network));
  VmSpec spec = state_.spec();
  spec.set_netns_pid(network_->netns_pid());
  if (network_->rootless().has_value()) {
    const net::RootlessNetwork& rootless = *network_->rootless();
    const pid_t holder = rootless.holder_pid(), helper = rootless.helper_pid();
    const uint64_t holder_ticks = StartTicks(holder),
                   helper_ticks = StartTicks(helper);
    Record([&](VmState& s) {
      NetworkState& net = *s.mutable_network();
      net.set_holder_pid(holder);
      net.set_holder_start_ticks(holder_ticks);
      net.set_helper_pid(helper);
      net.set_helper_start_ticks(helper_ticks);
    });
  }
  if (net::UsesTap(state_.network().mode())) {
    Phase("network ready", 0);
    Progress(absl::StrCat("network: ", network_->Describe()));
  }

  auto record_vmm = [this](pid_t pid) {
    const uint64_t vmm_ticks = StartTicks(pid);
    Record([&](VmState& s) {
      s.set_phase(VmState::BOOTING);
      s.set_vmm_pid(pid);
      s.set_vmm_start_ticks(vmm_ticks);
    });
  };
  absl::StatusOr<Subprocess> process;
  if (options_.restore.has_value()) {
    RestoreSource source = *options_.restore;
    source.started = record_vmm;
    process = vmm_.Restore(spec, dir(), source);
  } else {
    process = vmm_.Start(spec, dir());
  }
  if (!process.ok()) return FailBeforeStart(process.status());
  vmm_process_.emplace(std::move(*process));
  const pid_t pid = vmm_process_->pid();
  if (!options_.restore.has_value()) record_vmm(pid);
  if (channel_listener_) {
    HubOptions hub;
    hub.vm_name = state_.name();
    hub.transport = state_.spec().channel();
    hub.guest_socket = absl::StrCat(
        dir(), "/",
        hub.transport == "vsock" ? "v.sock" : channel::kQemuPortSocket);
    absl::StatusOr<std::unique_ptr<ChannelHub>> started =
        ChannelHub::Start(std::move(hub), std::move(channel_listener_));
    if (started.ok()) {
      hub_ = std::move(*started);
    } else {
      // The VM runs without exec; say why.
      Progress(absl::StrCat("control channel: ", started.status().message()));
    }
  }
  Phase(options_.restore.has_value() ? "restored" : "vmm started", 0);
  Progress(absl::StrCat(vmm_.Describe(), ", pid ", pid, "; console log ", dir(),
                        "/", kConsoleLog));
  if (options_.restore.has_value()) {
    // The guest runs on where its snapshot stopped: tell its agent at once
    // that it is a clone, so it reads its new plan (this VM's fw_cfg or
    // MMDS) and re-identifies before anything else.
    if (absl::Status told =
            WriteAll(vmm_process_->stdin_pipe().get(), "\n@fcvm reidentify\n",
                     "the VM's console");
        !told.ok()) {
      Progress(absl::StrCat("reidentify request: ", told.message()));
    }
  }

  bool out_open = true, err_open = true, vmm_exited = false;
  bool saw_console = false;
  std::optional<Clock::time_point> drain_deadline;
  std::vector<ControlClient> clients;
  absl::Status loop_error = absl::OkStatus();
  for (;;) {
    if (vmm_exited && !out_open && !err_open) break;
    std::vector<pollfd> fds = {{signals.get(), POLLIN, 0},
                               {listener->get(), POLLIN, 0}};
    const size_t first_client = fds.size();
    for (const ControlClient& client : clients) {
      fds.push_back({client.fd.get(), POLLIN, 0});
    }
    const size_t exit_at = fds.size();
    // Once the VMM has exited its pidfd stays readable: stop asking.
    if (!vmm_exited) fds.push_back({vmm_process_->exit_fd(), POLLIN, 0});
    const size_t out_at = fds.size();
    if (out_open) fds.push_back({vmm_process_->stdout_pipe().get(), POLLIN, 0});
    const size_t err_at = fds.size();
    if (err_open) fds.push_back({vmm_process_->stderr_pipe().get(), POLLIN, 0});
    const size_t fill_at = fds.size();
    const bool filling = fill_.has_value() && !fill_->finished();
    if (filling) fds.push_back({fill_->exit_fd(), POLLIN, 0});
    std::optional<Clock::time_point> wake = stop_deadline_;
    if (drain_deadline.has_value() && (!wake || *drain_deadline < *wake)) {
      wake = drain_deadline;
    }
    // --timeout: a wall-clock time (it must hold across an API server's
    // restart, and a SetTimeout moves it), turned into a wake-up each round.
    if (state_.expires_unix_ms() > 0 && !stopping_) {
      const auto expiry =
          Clock::now() + std::chrono::milliseconds(std::max<int64_t>(
                             0, state_.expires_unix_ms() - WallNowMs()));
      if (!wake || expiry < *wake) wake = expiry;
    }
    const int timeout_ms =
        wake.has_value()
            ? static_cast<int>(std::max<int64_t>(
                  0, std::chrono::duration_cast<std::chrono::milliseconds>(
                         *wake - Clock::now())
                             .count() +
                         1))
            : -1;
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      loop_error = ErrnoStatus("poll");
      break;
    }
    const auto now = Clock::now();
    if (drain_deadline.has_value() && now >= *drain_deadline) {
      break;  // The VMM is gone; whoever holds its pipes can keep them.
    }
    if (state_.expires_unix_ms() > 0 && !stopping_ &&
        WallNowMs() >= state_.expires_unix_ms()) {
      RequestStop("its timeout expired");
    }
    if (stop_deadline_.has_value() && now >= *stop_deadline_) {
      Progress("the guest did not power off in time: ending the VM");
      vmm_.ForceStop(*vmm_process_, dir());
      stop_deadline_.reset();
    }
    char buffer[65536];
    if (out_open && fds[out_at].revents != 0) {
      const ssize_t got =
          read(vmm_process_->stdout_pipe().get(), buffer, sizeof(buffer));
      if (got > 0) {
        if (!saw_console) {
          saw_console = true;
          // A restored guest's kernel booted long ago: its console's first
          // words are the agent's answer to the reidentify request.
          Phase(options_.restore.has_value() ? "console answered"
                                             : "kernel booted",
                0);
        }
        if (absl::Status fed = console_->Feed(absl::string_view(buffer, got));
            !fed.ok()) {
          Progress(absl::StrCat("console log: ", fed.message()));
        }
      } else if (got == 0 || errno != EINTR) {
        out_open = false;
      }
    }
    if (err_open && fds[err_at].revents != 0) {
      const ssize_t got =
          read(vmm_process_->stderr_pipe().get(), buffer, sizeof(buffer));
      if (got > 0) {
        (void)vmm_log_->Write(absl::string_view(buffer, got));
      } else if (got == 0 || errno != EINTR) {
        err_open = false;
      }
    }
    if (filling && fds[fill_at].revents != 0) {
      (void)fill_->Wait(absl::ZeroDuration());  // It said how it went.
    }
    if (!vmm_exited && fds[exit_at].revents != 0) {
      vmm_exited = true;
      drain_deadline = Clock::now() + kDrainTime;
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info;
      while (read(signals.get(), &info, sizeof(info)) == sizeof(info)) {
        RequestStop(absl::StrCat("signal ", strsignal(info.ssi_signo)));
      }
    }
    for (size_t i = 0; i < clients.size(); ++i) {
      if (fds[first_client + i].revents != 0) OnControl(clients[i]);
    }
    clients.erase(
        std::remove_if(clients.begin(), clients.end(),
                       [](const ControlClient& c) { return !c.fd.valid(); }),
        clients.end());
    if (fds[1].revents != 0) {
      UniqueFd client(accept4(listener->get(), nullptr, nullptr,
                              SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (client.valid() && clients.size() < kMaxControlClients) {
        clients.push_back({std::move(client), ""});
      }
    }
  }
  // A cache fill still waiting for its snapshot gets its answer now (the
  // control clients go) and ends; it is given a moment to tidy up.
  clients.clear();
  if (fill_.has_value() && !fill_->finished()) {
    (void)fill_->Wait(absl::Seconds(10));
  }
  std::string how;
  if (!loop_error.ok()) {
    // Never leave a VMM nobody watches.
    Progress(absl::StrCat("supervision failed (", loop_error.message(),
                          "): ending the VM"));
    vmm_.ForceStop(*vmm_process_, dir());
    if (error_.empty()) error_ = std::string(loop_error.message());
  }
  absl::StatusOr<ExitStatus> vmm_exit = vmm_process_->Wait(absl::Seconds(5));
  if (!vmm_exit.ok()) {
    vmm_.ForceStop(*vmm_process_, dir());
    vmm_exit = vmm_process_->Wait(absl::Seconds(5));
  }
  how = vmm_exit.ok() ? vmm_exit->ToString() : "did not end";
  // The VMM's own last words usually say why (a port already taken, a
  // missing file, KVM refusing).
  if (absl::StatusOr<std::string> log =
          ReadFile(absl::StrCat(dir(), "/", kVmmLog));
      log.ok()) {
    absl::string_view text = absl::StripTrailingAsciiWhitespace(*log);
    const std::string last(text.substr(text.rfind('\n') + 1));
    if (!last.empty()) absl::StrAppend(&how, ": ", last);
  }
  return Finish(how);
}

}  // namespace

int Supervise(StateStore& store, VmState state, Lease lease, Vmm& vmm,
              const SuperviseOptions& options) {
  Supervisor supervisor(store, std::move(state), std::move(lease), vmm,
                        options);
  return supervisor.Run();
}

}  // namespace fcvm::runner
