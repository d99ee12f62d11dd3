#include "agent/agent.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <chrono>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/channel_server.h"
#include "agent/http_client.h"
#include "agent/netconfig.h"
#include "agent/plan.h"
#include "agent/podman.h"
#include "base/eintr.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/util/message_differencer.h"

extern char** environ;

namespace fcvm::agent {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                               start)
      .count();
}

Clock::time_point After(absl::Duration d) {
  return Clock::now() + absl::ToChronoMicroseconds(d);
}

AgentEvent Event(AgentEvent::Kind kind, absl::string_view message = "") {
  AgentEvent event;
  event.set_kind(kind);
  event.set_message(std::string(message));
  return event;
}

// Splits a byte stream into lines; a line longer than 8 KiB is cut.
class LineSplitter {
 public:
  template <typename Emit>
  void Feed(absl::string_view data, Emit emit) {
    pending_.append(data.data(), data.size());
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      emit(absl::StripSuffix(
          absl::string_view(pending_).substr(start, nl - start), "\r"));
    }
    pending_.erase(0, start);
    if (pending_.size() > 8192) Flush(emit);
  }
  template <typename Emit>
  void Flush(Emit emit) {
    if (!pending_.empty()) emit(pending_);
    pending_.clear();
  }

 private:
  std::string pending_;
};

// Reads what is available from a non-blocking pipe, at most 64 KiB a call
// (a container that writes without pause must not starve the loop: its
// readiness probe, its stop, the channel's restart); false at end of file.
bool Drain(UniqueFd& fd, LineSplitter& lines, Reporter& reporter,
           absl::string_view kind, int max_reads = 4) {
  char buffer[16384];
  for (int reads = 0; reads < max_reads; ++reads) {
    const ssize_t n =
        RetryEintr([&] { return read(fd.get(), buffer, sizeof(buffer)); });
    if (n > 0) {
      lines.Feed(absl::string_view(buffer, n),
                 [&](absl::string_view line) { reporter.Output(kind, line); });
      continue;
    }
    if (n < 0 && errno == EAGAIN) return true;
    lines.Flush([&](absl::string_view line) { reporter.Output(kind, line); });
    fd.reset();
    return false;
  }
  return true;  // More to read: the next poll says so.
}

[[nodiscard]] absl::Status MakeDirs(const std::string& path) {
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&prefix, "/", part);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("mkdir ", prefix));
    }
  }
  return absl::OkStatus();
}

// Mounts a volume's block device, trying each filesystem the kernel has.
[[nodiscard]] absl::Status MountBlockVolume(const VolumeMount& volume,
                                            int index) {
  const std::string target = VolumeHostPath(volume, index);
  RETURN_IF_ERROR(MakeDirs(target));
  ASSIGN_OR_RETURN(std::string filesystems, ReadFile("/proc/filesystems"));
  const unsigned long flags = volume.read_only() ? MS_RDONLY : 0;
  for (absl::string_view line : absl::StrSplit(filesystems, '\n')) {
    if (line.empty() || absl::StartsWith(line, "nodev")) continue;
    const std::string type(absl::StripAsciiWhitespace(line));
    if (mount(volume.block_device().c_str(), target.c_str(), type.c_str(),
              flags, nullptr) == 0) {
      return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "volume ", volume.block_device(), " -> ", volume.container_path(),
      ": no filesystem the kernel knows mounts it"));
}

// Link-local address and route so MMDS (169.254.169.254) answers, unless
// the interface already has an address (from the kernel's ip=).
[[nodiscard]] absl::Status PrepareMmdsRoute(const AgentOptions& options) {
  const std::string& nic = options.mmds_interface;
  RETURN_IF_ERROR(SetLinkUp(nic));
  ASSIGN_OR_RETURN(std::vector<std::string> addresses, Ipv4Addresses(nic));
  if (addresses.empty()) {
    RETURN_IF_ERROR(ReplaceIpv4Address(nic, "169.254.0.2/16"));
  }
  return ReplaceRoute(absl::StrCat(options.mmds.endpoint.ip, "/32"), "", nic);
}

[[nodiscard]] absl::StatusOr<UniqueFd> NotifySocket(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("notify socket");
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": path too long"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  unlink(path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    return ErrnoStatus(absl::StrCat("bind ", path));
  }
  return fd;
}

// A vsock stream to the host, if the VM has vsock and the host listens.
UniqueFd ConnectVsock(uint32_t port) {
  UniqueFd fd(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return UniqueFd();
  sockaddr_vm address = {};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_HOST;
  address.svm_port = port;
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address),
              sizeof(address)) != 0) {
    if (errno != EINPROGRESS) return UniqueFd();
    pollfd pfd = {fd.get(), POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof(error);
    if (poll(&pfd, 1, 500) != 1 ||
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 ||
        error != 0) {
      return UniqueFd();
    }
  }
  return fd;
}

class Agent {
 public:
  Agent(const AgentOptions& options, Reporter& reporter)
      : options_(options), reporter_(reporter) {}

  int Run();

 private:
  // Fatal before the container runs: report and end.
  int Fail(absl::string_view step, const absl::Status& status) {
    reporter_.Event(
        Event(AgentEvent::ERROR, absl::StrCat(step, ": ", status.message())));
    return Finish(1);
  }
  int Finish(int code) {
    sync();
    AgentEvent event =
        Event(AgentEvent::POWER_OFF, "synced; the init powers off");
    event.set_exit_code(code);
    reporter_.Event(event);
    return code;
  }

  // A SIGTERM that arrived while the agent prepared (plan fetch, identity,
  // image load: each bounded, none interruptible) ends it before the
  // container starts, rather than after a container nobody wants.
  bool StoppedWhilePreparing() {
    signalfd_siginfo info;
    if (read(signals_.get(), &info, sizeof(info)) != sizeof(info)) {
      return false;
    }
    reporter_.Event(Event(AgentEvent::STOPPING,
                          absl::StrCat("signal ", strsignal(info.ssi_signo),
                                       " before the container started")));
    return true;
  }

  [[nodiscard]] absl::Status GetPlan();
  [[nodiscard]] absl::Status PrepareImage();
  [[nodiscard]] absl::Status StartWorkload(bool restart);
  void OnStarted(absl::string_view how);
  void Probe();
  void OnWorkloadExit();
  void RequestStop(absl::string_view why);
  void CheckGeneration();
  void ReadConsoleCommands();
  void StartChannel();
  void OnChannelExit();
  int Loop();

  const AgentOptions& options_;
  Reporter& reporter_;
  std::unique_ptr<PlanSource> source_;
  Plan plan_;
  std::string image_;
  bool loaded_from_archive_ = false;

  UniqueFd signals_;
  UniqueFd notify_;
  std::string notify_path_;

  std::optional<Subprocess> workload_;
  UniqueFd out_, err_;
  LineSplitter out_lines_, err_lines_;
  Clock::time_point workload_start_;
  bool started_ = false;
  bool ready_ = false;
  uint32_t probe_port_ = 0;
  Clock::time_point probe_deadline_;
  Clock::time_point next_probe_;
  Clock::time_point next_inspect_;
  absl::Status last_probe_;

  std::optional<Subprocess> stopper_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  int restarts_ = 0;
  std::optional<Clock::time_point> restart_at_;
  int exit_code_ = 0;
  bool workload_done_ = false;

  Clock::time_point next_generation_check_;
  LineSplitter console_lines_;

  std::optional<Subprocess> channel_;
  std::optional<Clock::time_point> channel_restart_at_;
};

void Agent::StartChannel() {
  channel_restart_at_.reset();
  if (options_.channel_argv.empty()) return;
  SubprocessOptions run;
  run.argv = options_.channel_argv;
  run.stdout_mode = StdioMode::kNull;
  run.stderr_mode = StdioMode::kInherit;  // Its few lines: the console.
  absl::StatusOr<Subprocess> channel = Subprocess::Start(std::move(run));
  if (!channel.ok()) {
    reporter_.Event(Event(AgentEvent::ERROR,
                          absl::StrCat("control channel: ",
                                       channel.status().message())));
    return;
  }
  channel_ = std::move(*channel);
}

void Agent::OnChannelExit() {
  absl::StatusOr<ExitStatus> exit = channel_->Wait();
  channel_.reset();
  if (exit.ok() && !exit->signaled && exit->code == kNoChannelDevice) return;
  reporter_.Event(Event(
      AgentEvent::ERROR,
      absl::StrCat("the control channel's server ",
                   exit.ok() ? exit->ToString() : exit.status().ToString(),
                   "; restarting it in 1 s")));
  channel_restart_at_ = After(absl::Seconds(1));
}

[[nodiscard]] absl::Status Agent::GetPlan() {
  ASSIGN_OR_RETURN(std::string cmdline, ReadFile(options_.cmdline_path));
  source_ = ChoosePlanSource(cmdline, options_.sysfs_root, options_.mmds);
  if (source_->CanChange()) {
    absl::Status route = PrepareMmdsRoute(options_);
    if (!route.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no fcvm.plan= on the command line, no fw_cfg ", kFwCfgPlanName,
          ", and MMDS is unreachable: ", route.message()));
    }
  }
  ASSIGN_OR_RETURN(std::string json,
                   source_->Fetch(absl::Now() + options_.plan_timeout));
  ASSIGN_OR_RETURN(plan_, ParsePlan(json));
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Agent::PrepareImage() {
  const auto start = Clock::now();
  const std::string archive = OciArchivePath(plan_);
  const std::string baked = RootfsDevice(plan_);
  SubprocessOptions run;
  run.stdout_mode = StdioMode::kPipe;
  run.stderr_mode = StdioMode::kPipe;
  std::string how = archive.empty() ? "registry" : archive;
  if (!baked.empty()) {
    // Nothing to load: the drive is the image's root filesystem, mounted
    // read-only, under an overlay whose upper layer is on the writable disk.
    // (Podman 4.3's own `--rootfs DIR:O` keeps that layer off the writable
    // disk, in its run root on the VM's /run tmpfs by all signs: a 256 MiB
    // copy into the container failed with ENOSPC.)
    RETURN_IF_ERROR(MakeDirs(kRootfsImageMount));
    if (mount(baked.c_str(), kRootfsImageMount, "ext4", MS_RDONLY, nullptr) !=
        0) {
      return ErrnoStatus(absl::StrCat("mounting the baked root filesystem ",
                                      baked, " on ", kRootfsImageMount));
    }
    const std::string upper = absl::StrCat(kRootfsLayerDir, "/upper");
    const std::string work = absl::StrCat(kRootfsLayerDir, "/work");
    for (const std::string& dir : {upper, work, std::string(kRootfsMountPoint)})
      RETURN_IF_ERROR(MakeDirs(dir));
    const std::string layers = absl::StrCat(
        "lowerdir=", kRootfsImageMount, ",upperdir=", upper, ",workdir=", work);
    if (mount("overlay", kRootfsMountPoint, "overlay", 0, layers.c_str()) !=
        0) {
      return ErrnoStatus(absl::StrCat("overlay on the baked root filesystem (",
                                      layers, ") at ", kRootfsMountPoint));
    }
    image_ = kRootfsMountPoint;
    how = absl::StrCat("baked rootfs ", baked, ", overlay at ",
                       kRootfsMountPoint);
  } else if (!archive.empty()) {
    run.argv = PodmanLoadArgv(archive);
    ASSIGN_OR_RETURN(Subprocess::Output output,
                     RunCommand(run, options_.load_timeout));
    ASSIGN_OR_RETURN(image_, LoadedImage(output.stdout_data));
    loaded_from_archive_ = true;
  } else {
    image_ = plan_.image();
    run.argv = {"podman", "image", "exists", image_};
    if (!RunCommand(run, absl::Minutes(1)).ok()) {
      run.argv = {"podman", "pull", "-q", image_};
      RETURN_IF_ERROR(RunCommand(run, options_.load_timeout).status());
    }
  }
  AgentEvent event = Event(AgentEvent::IMAGE_READY, how);
  event.set_image(image_);
  event.set_duration_us(MicrosSince(start));
  reporter_.Event(event);
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Agent::StartWorkload(bool restart) {
  SubprocessOptions run;
  run.argv = restart ? PodmanRestartArgv()
                     : PodmanRunArgv(plan_, image_, loaded_from_archive_);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "NOTIFY_SOCKET=")) env.push_back(*e);
  }
  env.push_back(absl::StrCat("NOTIFY_SOCKET=", notify_path_));
  run.env = std::move(env);
  run.stdout_mode = StdioMode::kPipe;
  run.stderr_mode = StdioMode::kPipe;
  ASSIGN_OR_RETURN(Subprocess process, Subprocess::Start(std::move(run)));
  out_ = std::move(process.stdout_pipe());
  err_ = std::move(process.stderr_pipe());
  for (const UniqueFd* fd : {&out_, &err_}) {
    fcntl(fd->get(), F_SETFL, fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  }
  workload_ = std::move(process);
  workload_start_ = Clock::now();
  started_ = ready_ = false;
  last_probe_ = absl::OkStatus();
  // Without READY=1 from Podman (an older Podman, sdnotify unsupported),
  // ask it whether the container runs, now and then.
  next_inspect_ = After(absl::Seconds(5));
  probe_port_ = plan_.readiness().tcp_port();
  if (probe_port_ == 0) {
    for (const PortMapping& port : plan_.ports()) {
      if (port.protocol().empty() || port.protocol() == "tcp") {
        probe_port_ = port.guest_port();
        break;
      }
    }
  }
  const uint32_t timeout = plan_.readiness().timeout_seconds();
  probe_deadline_ = After(absl::Seconds(timeout == 0 ? 120 : timeout));
  next_probe_ = Clock::now();
  return absl::OkStatus();
}

void Agent::OnStarted(absl::string_view how) {
  if (started_) return;
  started_ = true;
  AgentEvent event = Event(AgentEvent::CONTAINER_STARTED, how);
  event.set_image(image_);
  event.set_duration_us(MicrosSince(workload_start_));
  reporter_.Event(event);
  if (probe_port_ == 0) {
    ready_ = true;
    AgentEvent ready = Event(AgentEvent::READY, "started (no port to probe)");
    ready.set_duration_us(MicrosSince(workload_start_));
    reporter_.Event(ready);
  }
}

void Agent::Probe() {
  next_probe_ = After(absl::Milliseconds(250));
  const HttpEndpoint endpoint = {"127.0.0.1",
                                 static_cast<uint16_t>(probe_port_)};
  absl::Status status;
  const std::string& path = plan_.readiness().http_path();
  if (path.empty()) {
    status = ProbeTcp(endpoint, absl::Milliseconds(500));
  } else {
    HttpRequest request;
    request.path = path;
    absl::StatusOr<HttpResponse> response =
        HttpCall(endpoint, request, absl::Seconds(2));
    if (!response.ok()) {
      status = response.status();
    } else if (response->status < 200 || response->status >= 400) {
      status = absl::UnavailableError(
          absl::StrCat("GET ", path, " answered ", response->status));
    }
  }
  if (status.ok()) {
    // A port answering means the container runs, READY=1 or not.
    OnStarted("its port answers");
    ready_ = true;
    AgentEvent event = Event(
        AgentEvent::READY,
        path.empty()
            ? absl::StrCat("127.0.0.1:", probe_port_, " accepts connections")
            : absl::StrCat("GET http://127.0.0.1:", probe_port_, path,
                           " succeeded"));
    event.set_duration_us(MicrosSince(workload_start_));
    reporter_.Event(event);
    return;
  }
  last_probe_ = status;
  if (Clock::now() >= probe_deadline_) {
    ready_ = true;  // Stop probing; the workload keeps running.
    reporter_.Event(
        Event(AgentEvent::ERROR,
              absl::StrCat("readiness: not ready in time; last probe: ",
                           status.message())));
  }
}

void Agent::OnWorkloadExit() {
  // Whatever is still in the pipes belongs before the exit.
  // All of it (the workload is gone: nothing else waits).
  if (out_) Drain(out_, out_lines_, reporter_, "out", INT_MAX);
  if (err_) Drain(err_, err_lines_, reporter_, "err", INT_MAX);
  out_.reset();
  err_.reset();
  absl::StatusOr<ExitStatus> exit = workload_->Wait();
  workload_.reset();
  exit_code_ = !exit.ok()       ? 1
               : exit->signaled ? 128 + exit->signal
                                : exit->code;
  std::string message = exit.ok() ? exit->ToString() : exit.status().ToString();
  if (!started_ && exit_code_ >= 125 && exit_code_ <= 127) {
    absl::StrAppend(&message,
                    " before the container started (a Podman "
                    "error: see the err lines)");
  }
  AgentEvent event = Event(AgentEvent::EXITED, message);
  event.set_exit_code(exit_code_);
  event.set_duration_us(MicrosSince(workload_start_));
  reporter_.Event(event);
  if (stopper_.has_value()) {
    (void)stopper_->Wait(absl::Seconds(30));
    stopper_.reset();
  }
  const RestartPolicy policy = plan_.restart();
  const bool again =
      !stopping_ &&
      (policy == RESTART_ALWAYS ||
       (policy == RESTART_ON_FAILURE && exit_code_ != 0 && started_));
  if (again) {
    const absl::Duration delay = std::min(
        absl::Seconds(1) * (1 << std::min(restarts_, 5)), absl::Seconds(30));
    ++restarts_;
    reporter_.Event(Event(AgentEvent::RESTARTING,
                          absl::StrCat("restart ", restarts_, " in ",
                                       absl::FormatDuration(delay))));
    restart_at_ = After(delay);
    return;
  }
  workload_done_ = true;
}

void Agent::RequestStop(absl::string_view why) {
  if (stopping_) return;
  stopping_ = true;
  restart_at_.reset();
  const uint32_t grace =
      plan_.stop_timeout_seconds() == 0 ? 10 : plan_.stop_timeout_seconds();
  reporter_.Event(Event(AgentEvent::STOPPING,
                        absl::StrCat(why, "; podman stop -t ", grace)));
  if (!workload_.has_value()) {
    workload_done_ = true;
    return;
  }
  SubprocessOptions stop;
  stop.argv = PodmanStopArgv(absl::Seconds(grace));
  stop.stdout_mode = StdioMode::kNull;
  stop.stderr_mode = StdioMode::kNull;
  absl::StatusOr<Subprocess> stopper = Subprocess::Start(std::move(stop));
  if (stopper.ok()) stopper_ = std::move(*stopper);
  // Podman gets the grace time plus its own slowness; then the hard way.
  stop_deadline_ = After(absl::Seconds(grace + 30));
}

void Agent::CheckGeneration() {
  next_generation_check_ = After(options_.generation_poll);
  if (!reporter_.has_stream()) {
    UniqueFd stream = ConnectVsock(options_.vsock_port);
    if (stream) reporter_.AttachStream(std::move(stream));
  }
  const auto start = Clock::now();
  absl::StatusOr<std::string> json =
      source_->Fetch(absl::Now() + options_.mmds.request_timeout);
  if (!json.ok()) return;  // Quietly: MMDS may be repopulated right now.
  absl::StatusOr<Plan> plan = ParsePlan(*json);
  if (!plan.ok()) {
    reporter_.Event(
        Event(AgentEvent::ERROR,
              absl::StrCat("new plan ignored: ", plan.status().message())));
    next_generation_check_ = After(options_.generation_poll * 10);
    return;
  }
  if (plan->generation() <= plan_.generation()) return;
  const uint64_t old_generation = plan_.generation();
  // Only the identity changes under a running workload.
  Plan next = plan_;
  next.set_generation(plan->generation());
  next.set_hostname(plan->hostname());
  *next.mutable_network() = plan->network();
  next.set_host_time_unix_ms(plan->host_time_unix_ms());
  next.set_entropy(plan->entropy());
  next.set_machine_id(plan->machine_id());
  // What did not change is not applied again: a clone on its own user
  // network keeps its snapshot's address, and re-configuring eth0 costs
  // the most of the identity step.
  Plan apply = next;
  if (google::protobuf::util::MessageDifferencer::Equals(plan_.network(),
                                                         next.network())) {
    apply.clear_network();
  }
  absl::StatusOr<IdentityReport> applied =
      ApplyIdentity(apply, options_.identity);
  if (!applied.ok()) {
    reporter_.Event(Event(AgentEvent::ERROR,
                          absl::StrCat("generation ", plan->generation(), ": ",
                                       applied.status().message())));
    return;
  }
  plan_ = std::move(next);
  AgentEvent event = Event(
      AgentEvent::REIDENTIFIED,
      absl::StrCat("generation ", old_generation, " -> ", plan_.generation(),
                   ": ", applied->summary, " (applying took ",
                   absl::ToInt64Microseconds(applied->took), " us)"));
  event.set_generation(plan_.generation());
  event.set_duration_us(MicrosSince(start));
  event.set_plan_source(source_->name());
  reporter_.Event(event);
  // A clone's host waits for READY: probe the workload again (from here,
  // so its duration is the clone's own), or say so at once without a port.
  if (workload_.has_value() && ready_) {
    workload_start_ = Clock::now();
    if (probe_port_ == 0) {
      AgentEvent ready = Event(AgentEvent::READY, "still running (no port)");
      ready.set_duration_us(0);
      reporter_.Event(ready);
    } else {
      ready_ = false;
      const uint32_t timeout = plan_.readiness().timeout_seconds();
      probe_deadline_ = After(absl::Seconds(timeout == 0 ? 120 : timeout));
      next_probe_ = Clock::now();
    }
  }
}

void Agent::ReadConsoleCommands() {
  char buffer[512];
  const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
  if (n <= 0) return;
  console_lines_.Feed(absl::string_view(buffer, n),
                      [&](absl::string_view line) {
                        line = absl::StripAsciiWhitespace(line);
                        if (line == "@fcvm stop") {
                          RequestStop("stop request on the console");
                        } else if (line == "@fcvm reidentify") {
                          // The host restored this VM from a snapshot: its
                          // plan (fw_cfg, MMDS) is the clone's now, and the
                          // MACs eth0 learned are the snapshot host's (no
                          // eth0, nothing learned: nothing to forget).
                          if (absl::StatusOr<int> forgot = FlushNeighbours(
                                  options_.mmds_interface);
                              !forgot.ok() &&
                              !absl::IsNotFound(forgot.status())) {
                            reporter_.Event(Event(
                                AgentEvent::ERROR,
                                absl::StrCat("after the restore: ",
                                             forgot.status().message())));
                          }
                          source_->Restored();
                          CheckGeneration();
                        }
                      });
}

int Agent::Loop() {
  next_generation_check_ = After(options_.generation_poll);
  const bool console_commands = isatty(STDIN_FILENO) == 1;
  for (;;) {
    if (workload_done_ && (stopping_ || !plan_.stay()))
      return Finish(exit_code_);

    std::vector<pollfd> fds;
    enum Slot {
      kSignals,
      kConsole,
      kNotify,
      kOut,
      kErr,
      kExit,
      kStream,
      kChannel
    };
    std::vector<Slot> slots;
    auto add = [&](int fd, Slot slot, short events = POLLIN) {
      if (fd < 0) return;
      fds.push_back({fd, events, 0});
      slots.push_back(slot);
    };
    add(signals_.get(), kSignals);
    if (console_commands) add(STDIN_FILENO, kConsole);
    add(notify_.get(), kNotify);
    add(out_.get(), kOut);
    add(err_.get(), kErr);
    if (workload_.has_value()) add(workload_->exit_fd(), kExit);
    // The host end of vsock goes away on a snapshot restore (the device
    // resets its connections): the cue to look for a new generation now.
    add(reporter_.stream_fd(), kStream, POLLRDHUP);
    if (channel_.has_value()) add(channel_->exit_fd(), kChannel);

    // The nearest timer.
    Clock::time_point wake = After(absl::Hours(1));
    const bool probing = workload_.has_value() && !ready_ && probe_port_ != 0;
    if (probing) wake = std::min(wake, next_probe_);
    const bool inspecting = workload_.has_value() && !started_;
    if (inspecting) wake = std::min(wake, next_inspect_);
    if (restart_at_.has_value()) wake = std::min(wake, *restart_at_);
    if (stopping_ && workload_.has_value())
      wake = std::min(wake, stop_deadline_);
    if (source_->CanChange()) wake = std::min(wake, next_generation_check_);
    if (channel_restart_at_.has_value())
      wake = std::min(wake, *channel_restart_at_);
    const int timeout_ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake -
                                                                 Clock::now())
                   .count() +
               1));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      reporter_.Event(Event(AgentEvent::ERROR, "poll failed"));
      return Finish(1);
    }
    for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      switch (slots[i]) {
        case kSignals: {
          signalfd_siginfo info;
          if (read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
            RequestStop(absl::StrCat("signal ", strsignal(info.ssi_signo)));
          }
          break;
        }
        case kConsole:
          ReadConsoleCommands();
          break;
        case kNotify: {
          char message[1024];
          const ssize_t got = recv(notify_.get(), message, sizeof(message), 0);
          if (got > 0 && workload_.has_value() &&
              absl::StrContains(absl::string_view(message, got), "READY=1")) {
            OnStarted("podman: READY=1");
          }
          break;
        }
        case kOut:
          Drain(out_, out_lines_, reporter_, "out");
          break;
        case kErr:
          Drain(err_, err_lines_, reporter_, "err");
          break;
        case kExit:
          OnWorkloadExit();
          break;
        case kChannel:
          OnChannelExit();
          break;
        case kStream:
          reporter_.DropStream();
          if (source_->CanChange()) next_generation_check_ = Clock::now();
          break;
      }
    }
    const auto now = Clock::now();
    if (workload_.has_value() && !ready_ && probe_port_ != 0 &&
        now >= next_probe_) {
      Probe();
    }
    if (workload_.has_value() && !started_ && now >= next_inspect_) {
      next_inspect_ = After(absl::Seconds(2));
      SubprocessOptions inspect;
      inspect.argv = {"podman",   "container",          "inspect",
                      "--format", "{{.State.Running}}", kContainerName};
      inspect.stdout_mode = StdioMode::kPipe;
      inspect.stderr_mode = StdioMode::kNull;
      absl::StatusOr<Subprocess::Output> out =
          RunCommand(std::move(inspect), absl::Seconds(30));
      if (out.ok() && absl::StartsWith(out->stdout_data, "true")) {
        OnStarted("podman inspect: running");
      }
    }
    if (channel_restart_at_.has_value() && now >= *channel_restart_at_) {
      StartChannel();
    }
    if (restart_at_.has_value() && now >= *restart_at_) {
      restart_at_.reset();
      absl::Status started = StartWorkload(/*restart=*/true);
      if (!started.ok()) {
        reporter_.Event(Event(AgentEvent::ERROR,
                              absl::StrCat("restart: ", started.message())));
        workload_done_ = true;
      }
    }
    if (stopping_ && workload_.has_value() && now >= stop_deadline_) {
      reporter_.Event(Event(AgentEvent::ERROR,
                            "podman stop did not end the container; killing"));
      (void)workload_->Kill();
    }
    if (source_->CanChange() && !stopping_ && now >= next_generation_check_) {
      CheckGeneration();
    }
  }
}

int Agent::Run() {
  AgentEvent hello = Event(AgentEvent::AGENT_STARTED, "fc-agent");
  reporter_.Event(hello);

  // SIGTERM/SIGINT (forwarded by the init) are read from a signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  signals_.reset(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals_) return Fail("signalfd", ErrnoStatus("signalfd"));

  UniqueFd stream = ConnectVsock(options_.vsock_port);
  if (stream) reporter_.AttachStream(std::move(stream));
  // First of all: a VM whose container fails to start is still one a user
  // can look into.
  StartChannel();

  if (absl::Status status = GetPlan(); !status.ok()) {
    return Fail(
        absl::StrCat("plan (from ", source_ ? source_->name() : "nowhere", ")"),
        status);
  }
  AgentEvent accepted = Event(AgentEvent::PLAN_ACCEPTED);
  accepted.set_plan_source(source_->name());
  accepted.set_generation(plan_.generation());
  accepted.set_image(plan_.image());
  reporter_.Event(accepted);
  if (StoppedWhilePreparing()) return Finish(143);

  absl::StatusOr<IdentityReport> identity =
      ApplyIdentity(plan_, options_.identity);
  if (!identity.ok()) return Fail("identity", identity.status());
  AgentEvent applied = Event(AgentEvent::IDENTITY_APPLIED, identity->summary);
  applied.set_generation(plan_.generation());
  applied.set_duration_us(absl::ToInt64Microseconds(identity->took));
  reporter_.Event(applied);

  for (int i = 0; i < plan_.volumes_size(); ++i) {
    if (!plan_.volumes(i).has_block_device()) continue;
    if (absl::Status status = MountBlockVolume(plan_.volumes(i), i);
        !status.ok()) {
      return Fail("volumes", status);
    }
  }
  if (StoppedWhilePreparing()) return Finish(143);
  if (absl::Status status = PrepareImage(); !status.ok()) {
    return Fail(absl::StrCat("image ", plan_.image()), status);
  }
  if (StoppedWhilePreparing()) return Finish(143);
  if (absl::Status status = MakeDirs(options_.run_dir); !status.ok()) {
    return Fail("run directory", status);
  }
  notify_path_ = absl::StrCat(options_.run_dir, "/notify.sock");
  absl::StatusOr<UniqueFd> notify = NotifySocket(notify_path_);
  if (!notify.ok()) return Fail("notify socket", notify.status());
  notify_ = std::move(*notify);
  if (absl::Status status = StartWorkload(/*restart=*/false); !status.ok()) {
    return Fail("podman run", status);
  }
  return Loop();
}

}  // namespace

int RunAgent(const AgentOptions& options, Reporter& reporter) {
  Agent agent(options, reporter);
  return agent.Run();
}

}  // namespace fcvm::agent
