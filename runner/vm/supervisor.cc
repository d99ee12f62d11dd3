#include "runner/vm/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/report.h"
#include "agent/status.pb.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "google/protobuf/util/json_util.h"
#include "runner/net/rootless.h"
#include "runner/net/vm_network.h"
#include "runner/state/process.h"

namespace fcvm::runner {
namespace {

using agent::AgentEvent;
using Clock = std::chrono::steady_clock;

class Supervisor {
 public:
  Supervisor(StateStore& store, std::string name, Vmm& vmm,
             const SuperviseOptions& options)
      : store_(store), name_(std::move(name)), vmm_(vmm), options_(options) {}

  int Run();

 private:
  void Progress(const std::string& text) {
    if (options_.progress) {
      std::fprintf(stderr, "fcvm: %s: %s\n", name_.c_str(), text.c_str());
    }
  }
  int64_t WallMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                 start_)
        .count();
  }
  void Phase(const std::string& phase, int64_t guest_ms,
             std::optional<VmState::Phase> to = std::nullopt) {
    const int64_t wall = WallMs();
    (void)store_.Update(name_, [&](VmState& s) {
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
  void OnConsole(const char* data, size_t size);
  void OnLine(absl::string_view line);
  void OnEvent(const AgentEvent& event);
  void RequestStop(const std::string& why);

  StateStore& store_;
  std::string name_;
  Vmm& vmm_;
  SuperviseOptions options_;
  Clock::time_point start_ = Clock::now();
  std::string dir_;
  VmState initial_;
  std::optional<Subprocess> vmm_process_;
  UniqueFd console_log_, container_log_, vmm_log_;
  std::string partial_;
  bool saw_console_ = false;
  bool stopping_ = false;
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
    case AgentEvent::IMAGE_READY:
      Phase("image loaded", guest);
      break;
    case AgentEvent::CONTAINER_STARTED:
      Phase("container started", guest);
      break;
    case AgentEvent::READY: {
      Phase("container ready", guest, VmState::RUNNING);
      for (const agent::PortMapping& port : initial_.ports()) {
        Progress(absl::StrCat("guest port ", port.guest_port(), "/",
                              port.protocol(),
                              " is at 127.0.0.1:", port.host_port()));
      }
      break;
    }
    case AgentEvent::EXITED:
      exit_code_ = event.exit_code();
      Progress(absl::StrCat("container ", event.message()));
      break;
    case AgentEvent::ERROR:
      error_ = event.message();
      Progress(absl::StrCat("error: ", event.message()));
      (void)store_.Update(name_, [&](VmState& s) { s.set_error(error_); });
      break;
    case AgentEvent::RESTARTING:
      Progress(event.message());
      break;
    default:
      break;
  }
}

void Supervisor::OnLine(absl::string_view line) {
  std::string kind, payload;
  if (!agent::ParseFrame(line, &kind, &payload)) return;
  if (kind == "status") {
    AgentEvent event;
    if (google::protobuf::util::JsonStringToMessage(payload, &event).ok()) {
      OnEvent(event);
    }
  } else if (kind == "out" || kind == "err") {
    (void)WriteAll(container_log_.get(), absl::StrCat(payload, "\n"),
                   kContainerLog);
  }
}

void Supervisor::OnConsole(const char* data, size_t size) {
  if (!saw_console_) {
    saw_console_ = true;
    Phase("kernel booted", 0);
  }
  (void)WriteAll(console_log_.get(), absl::string_view(data, size),
                 kConsoleLog);
  partial_.append(data, size);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    absl::string_view line(partial_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    OnLine(line);
  }
  partial_.erase(0, start);
}

void Supervisor::RequestStop(const std::string& why) {
  if (stopping_) {
    Progress("second stop request: ending the VM now");
    vmm_.ForceStop(*vmm_process_, dir_);
    return;
  }
  stopping_ = true;
  Progress(absl::StrCat("stopping (", why, ")"));
  (void)store_.Update(name_,
                      [](VmState& s) { s.set_phase(VmState::STOPPING); });
  // The agent reads the console: it stops the container gracefully, syncs
  // and powers the VM off.
  (void)WriteAll(vmm_process_->stdin_pipe().get(), "\n@fcvm stop\n",
                 "the VM's console");
  const uint32_t grace = initial_.spec().plan().stop_timeout_seconds() == 0
                             ? 10
                             : initial_.spec().plan().stop_timeout_seconds();
  stop_deadline_ = Clock::now() + std::chrono::seconds(grace + 30);
}

int Supervisor::Run() {
  absl::StatusOr<VmState> state = store_.Read(name_);
  if (!state.ok()) {
    std::fprintf(stderr, "fcvm: %s\n",
                 std::string(state.status().message()).c_str());
    return 125;
  }
  initial_ = *state;
  dir_ = initial_.dir();
  auto open_log = [&](const char* file) {
    return OpenFd(absl::StrCat(dir_, "/", file),
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  };
  absl::StatusOr<UniqueFd> console = open_log(kConsoleLog);
  absl::StatusOr<UniqueFd> container = open_log(kContainerLog);
  absl::StatusOr<UniqueFd> vmm_log = open_log("vmm.log");
  auto fail = [&](const absl::Status& status) {
    const std::string message = std::string(status.message());
    (void)store_.Update(name_, [&](VmState& s) {
      s.set_phase(VmState::FAILED);
      s.set_error(message);
      s.set_ended_unix_ms(absl::ToUnixMillis(absl::Now()));
    });
    std::fprintf(stderr, "fcvm: %s: %s\n", name_.c_str(), message.c_str());
    return 125;
  };
  for (auto* log : {&console, &container, &vmm_log}) {
    if (!log->ok()) return fail(log->status());
  }
  console_log_ = std::move(*console);
  container_log_ = std::move(*container);
  vmm_log_ = std::move(*vmm_log);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  signal(SIGPIPE, SIG_IGN);

  // Rootless TAP networking: the VM's namespaces, their holder and helper
  // come first (the VMM joins them); they end with this function.
  std::optional<net::RootlessNetwork> rootless;
  VmSpec spec = initial_.spec();
  const std::string mode = initial_.network().mode();
  if (mode == net::kPasta || mode == net::kSlirp4netns) {
    char self[4096];
    const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0) return fail(ErrnoStatus("readlink /proc/self/exe"));
    absl::StatusOr<net::RootlessNetwork> started =
        net::RootlessNetwork::Start(
            initial_,
            {std::string(self, length),
             absl::StrCat("--state_dir=", store_.root()), "netns-holder",
             name_},
            dir_);
    if (!started.ok()) return fail(started.status());
    rootless.emplace(std::move(*started));
    const pid_t holder = rootless->holder_pid(),
                helper = rootless->helper_pid();
    const uint64_t holder_ticks = StartTicks(holder),
                   helper_ticks = StartTicks(helper);
    (void)store_.Update(name_, [&](VmState& s) {
      NetworkState& net = *s.mutable_network();
      net.set_holder_pid(holder);
      net.set_holder_start_ticks(holder_ticks);
      net.set_helper_pid(helper);
      net.set_helper_start_ticks(helper_ticks);
    });
    spec.set_netns_pid(holder);
    Phase("network ready", 0);
    Progress(absl::StrCat("network: ", mode, ", pid ", helper,
                          "; namespace uplink ", rootless->uplink(), ", TAP ",
                          initial_.network().tap(), ", guest ",
                          initial_.network().guest_ip()));
  }

  absl::StatusOr<Subprocess> process = vmm_.Start(spec, dir_);
  if (!process.ok()) return fail(process.status());
  vmm_process_.emplace(std::move(*process));
  const pid_t pid = vmm_process_->pid();
  const uint64_t ticks = StartTicks(pid);
  (void)store_.Update(name_, [&](VmState& s) {
    s.set_phase(VmState::BOOTING);
    s.set_vmm_pid(pid);
    s.set_vmm_start_ticks(ticks);
  });
  Phase(absl::StrCat("vmm started"), 0);
  Progress(absl::StrCat(vmm_.Describe(), ", pid ", pid, "; console log ", dir_,
                        "/", kConsoleLog));

  bool out_open = true, err_open = true;
  for (;;) {
    std::vector<pollfd> fds = {{signals.get(), POLLIN, 0},
                               {vmm_process_->exit_fd(), POLLIN, 0}};
    if (out_open) fds.push_back({vmm_process_->stdout_pipe().get(), POLLIN, 0});
    if (err_open) fds.push_back({vmm_process_->stderr_pipe().get(), POLLIN, 0});
    int timeout_ms = -1;
    if (stop_deadline_.has_value()) {
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(
                 *stop_deadline_ - Clock::now())
                 .count()));
    }
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && stop_deadline_.has_value()) {
      Progress("the guest did not power off in time: ending the VM");
      vmm_.ForceStop(*vmm_process_, dir_);
      stop_deadline_.reset();
    }
    char buffer[65536];
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t got = read(fds[i].fd, buffer, sizeof(buffer));
      const bool is_out = fds[i].fd == vmm_process_->stdout_pipe().get();
      if (got <= 0) {
        (is_out ? out_open : err_open) = false;
        continue;
      }
      if (is_out) {
        OnConsole(buffer, got);
      } else {
        (void)WriteAll(vmm_log_.get(), absl::string_view(buffer, got),
                       "vmm.log");
      }
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info;
      if (read(signals.get(), &info, sizeof(info)) == sizeof(info)) {
        RequestStop(absl::StrCat("signal ", strsignal(info.ssi_signo)));
      }
    }
    // The VMM ended: drain what it wrote last, then stop.
    if (fds[1].revents != 0 && !out_open && !err_open) break;
    if (fds[1].revents != 0 && (out_open || err_open)) {
      // Pipes still open: the loop drains them (EOF follows the exit).
      continue;
    }
  }
  absl::StatusOr<ExitStatus> vmm_exit = vmm_process_->Wait(absl::Seconds(5));
  const bool clean = exit_code_.has_value();
  if (!clean && error_.empty()) {
    // The VMM's own last words usually say why (a port already taken, a
    // missing file, KVM refusing).
    std::string last_words;
    if (absl::StatusOr<std::string> log =
            ReadFile(absl::StrCat(dir_, "/vmm.log"));
        log.ok()) {
      absl::string_view text = absl::StripTrailingAsciiWhitespace(*log);
      last_words = std::string(text.substr(text.rfind('\n') + 1));
    }
    error_ =
        absl::StrCat("the VM ended before the container did (VMM ",
                     vmm_exit.ok() ? vmm_exit->ToString() : "did not end",
                     last_words.empty() ? "" : absl::StrCat(": ", last_words),
                     "; see ", dir_, "/", kConsoleLog, " and vmm.log)");
    Progress(error_);
  }
  const int code = clean ? *exit_code_ : 125;
  (void)store_.Update(name_, [&](VmState& s) {
    s.set_phase(clean ? VmState::EXITED : VmState::FAILED);
    s.set_exit_code(code);
    if (!error_.empty()) s.set_error(error_);
    s.set_ended_unix_ms(absl::ToUnixMillis(absl::Now()));
    s.set_vmm_pid(0);
    s.set_supervisor_pid(0);
  });
  Phase("vm ended", 0);
  unlink(absl::StrCat(dir_, "/qmp.sock").c_str());
  rootless.reset();  // Helper and holder: the namespace goes with them.
  unlink(absl::StrCat(dir_, "/slirp4netns.sock").c_str());
  if (absl::Status down = net::TearDownNetwork(initial_); !down.ok()) {
    Progress(absl::StrCat("network teardown: ", down.message()));
  }
  return code;
}

}  // namespace

int Supervise(StateStore& store, const std::string& name, Vmm& vmm,
              const SuperviseOptions& options) {
  Supervisor supervisor(store, name, vmm, options);
  return supervisor.Run();
}

}  // namespace fcvm::runner
