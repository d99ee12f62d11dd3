#include "runner/net/rootless.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/netconfig.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "runner/net/tap_network.h"

namespace fcvm::runner::net {
namespace {

constexpr char kLog[] = "network.log";

// Writes `text` to /proc/self/`file` in one write(), as the kernel wants
// for id maps.
[[nodiscard]] absl::Status WriteProcSelf(const std::string& file,
                                         const std::string& text) {
  const std::string path = absl::StrCat("/proc/self/", file);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY | O_CLOEXEC));
  if (write(fd.get(), text.data(), text.size()) !=
      static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(absl::StrCat("write '", text, "' to ", path));
  }
  return absl::OkStatus();
}

// One line (without its newline) from `fd`, read a byte at a time so that
// nothing after it is consumed. Fails at end of file, at `deadline`, or
// when `watch` (if valid) becomes readable first: the helper ended.
[[nodiscard]] absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline,
                                                   int watch) {
  std::string line;
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {watch, POLLIN, 0}};
    const absl::Duration left = deadline - absl::Now();
    const int timeout_ms =
        deadline == absl::InfiniteFuture() ? -1
        : left <= absl::ZeroDuration()
            ? 0
            : static_cast<int>(std::min<int64_t>(
                  absl::ToInt64Milliseconds(left) + 1, 1 << 30));
    const int n = poll(fds, watch >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("poll");
    if (n == 0) return absl::DeadlineExceededError("no answer in time");
    if (watch >= 0 && fds[1].revents != 0 && fds[0].revents == 0) {
      return absl::AbortedError("the helper ended");
    }
    char c;
    const ssize_t got = read(fd, &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return absl::UnavailableError("the holder ended");
    if (c == '\n') return line;
    line.push_back(c);
  }
}

// The last non-empty line of the VM's network.log (what pasta, slirp4netns
// or the holder said last), for error messages.
std::string LastLogLine(const std::string& dir) {
  absl::StatusOr<std::string> log = ReadFile(absl::StrCat(dir, "/", kLog));
  if (!log.ok()) return "";
  absl::string_view text = absl::StripTrailingAsciiWhitespace(*log);
  return std::string(text.substr(text.rfind('\n') + 1));
}

[[nodiscard]] absl::Status SendToSlirp(const std::string& api,
                                       const std::string& request,
                                       absl::Duration timeout) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixStreamWhenReady(
                                    api, "slirp4netns's API", timeout));
  timeval tv = {static_cast<time_t>(absl::ToInt64Seconds(timeout)), 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  RETURN_IF_ERROR(WriteAll(fd.get(), request, "slirp4netns's API"));
  shutdown(fd.get(), SHUT_WR);
  ASSIGN_OR_RETURN(std::string response,
                   ReadAll(fd.get(), "slirp4netns's API"));
  return SlirpResponseStatus(response);
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> ChooseRootlessHelper(
    const std::string& wanted) {
  const bool pasta = InPath(kPasta), slirp = InPath(kSlirp4netns);
  if (wanted == kPasta || (wanted == "auto" && pasta)) {
    if (pasta) return std::string(kPasta);
    return absl::NotFoundError(
        "--network=pasta: no pasta in PATH (Debian package passt)");
  }
  if (wanted == kSlirp4netns || (wanted == "auto" && slirp)) {
    if (slirp) return std::string(kSlirp4netns);
    return absl::NotFoundError(
        "--network=slirp4netns: no slirp4netns in PATH (Debian package "
        "slirp4netns)");
  }
  if (wanted == "auto") {
    return absl::NotFoundError(
        "rootless networking needs pasta or slirp4netns, and neither is in "
        "PATH (Debian packages passt, slirp4netns)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no rootless network helper called '", wanted, "'"));
}

std::vector<std::string> HelperArgv(const std::string& helper, pid_t holder,
                                    const std::string& api_socket,
                                    const std::vector<PublishedPort>& ports,
                                    bool as_root) {
  if (helper == kSlirp4netns) {
    // --disable-host-loopback: the guest must not reach the host's own
    // loopback services through 10.0.2.2.
    return {kSlirp4netns,
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            absl::StrCat("--api-socket=", api_socket),
            absl::StrCat(holder),
            "tap0"};
  }
  // pasta: in the foreground (we own the process), IPv4 only (the guest's
  // subnet is), no forwarding from the namespace to the host, and the
  // gateway not mapped to the host's loopback (as slirp4netns above).
  std::vector<std::string> argv = {
      kPasta,        "--foreground", "--quiet", "--config-net", "--ipv4-only",
      "--no-map-gw", "-T",           "none",    "-U",           "none"};
  bool tcp = false, udp = false;
  for (const PublishedPort& port : ports) {
    const bool is_udp = port.protocol() == "udp";
    argv.push_back(is_udp ? "-u" : "-t");
    argv.push_back(absl::StrCat("127.0.0.1/", port.host_port()));
    (is_udp ? udp : tcp) = true;
  }
  if (!tcp) argv.insert(argv.end(), {"-t", "none"});
  if (!udp) argv.insert(argv.end(), {"-u", "none"});
  if (as_root) argv.insert(argv.end(), {"--runas", "0"});
  argv.push_back(absl::StrCat(holder));
  return argv;
}

std::string SlirpHostForwardRequest(const PublishedPort& port) {
  google::protobuf::Struct request;
  auto& fields = *request.mutable_fields();
  fields["execute"].set_string_value("add_hostfwd");
  auto& args = *fields["arguments"].mutable_struct_value()->mutable_fields();
  args["proto"].set_string_value(port.protocol().empty() ? "tcp"
                                                         : port.protocol());
  args["host_addr"].set_string_value("127.0.0.1");
  args["host_port"].set_number_value(port.host_port());
  args["guest_port"].set_number_value(port.host_port());
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(request, &json);
  return json;
}

[[nodiscard]] absl::Status SlirpResponseStatus(const std::string& response) {
  google::protobuf::Struct parsed;
  if (!google::protobuf::util::JsonStringToMessage(response, &parsed).ok()) {
    return absl::DataLossError(
        absl::StrCat("slirp4netns answered something that is not JSON: '",
                     response.substr(0, 200), "'"));
  }
  const auto& fields = parsed.fields();
  if (fields.contains("return")) return absl::OkStatus();
  std::string why = "no reason given";
  if (auto error = fields.find("error"); error != fields.end()) {
    const auto& details = error->second.struct_value().fields();
    if (auto desc = details.find("desc"); desc != details.end()) {
      why = desc->second.string_value();
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("slirp4netns refused: ", why));
}

[[nodiscard]] absl::Status EnterOwnNamespaces() {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    return ErrnoStatus(
        "unshare a user and a network namespace (are user namespaces "
        "allowed? sysctl user.max_user_namespaces)");
  }
  // From inside, a process may map only its own ids, and its gid only once
  // setgroups is denied; that is all the VMM needs (root included: ids
  // left unmapped read as nobody, and files stay reachable through their
  // other-permissions).
  RETURN_IF_ERROR(WriteProcSelf("setgroups", "deny"));
  RETURN_IF_ERROR(WriteProcSelf("uid_map", absl::StrCat("0 ", uid, " 1")));
  RETURN_IF_ERROR(WriteProcSelf("gid_map", absl::StrCat("0 ", gid, " 1")));
  return agent::SetLinkUp("lo");
}

[[nodiscard]] absl::StatusOr<std::string> WaitForUplink(
    const std::string& tap, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    std::string found;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
      for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
        if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET ||
            (a->ifa_flags & IFF_UP) == 0 || a->ifa_name == tap ||
            std::string(a->ifa_name) == "lo") {
          continue;
        }
        char ip[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET,
                  &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, ip,
                  sizeof(ip));
        int prefix = 0;
        if (a->ifa_netmask != nullptr) {
          prefix = __builtin_popcount(
              reinterpret_cast<sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr);
        }
        found = absl::StrCat(a->ifa_name, " ", ip, "/", prefix);
      }
      freeifaddrs(list);
    }
    bool default_route = false;
    if (absl::StatusOr<std::vector<std::string>> routes = agent::Ipv4Routes();
        routes.ok()) {
      for (const std::string& route : *routes) {
        default_route |= absl::StartsWith(route, "0.0.0.0/0");
      }
    }
    if (!found.empty() && default_route) return found;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the namespace's uplink was not configured within ",
          absl::FormatDuration(timeout),
          found.empty() ? " (no addressed interface)" : " (no default route)"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

int NetnsHolderMain() {
  auto say = [](const std::string& line) {
    (void)WriteAll(STDOUT_FILENO, absl::StrCat(line, "\n"), "stdout");
  };
  auto fail = [&](const absl::Status& status) {
    say(absl::StrCat("error: ", status.message()));
    return 1;
  };
  absl::StatusOr<std::string> given =
      ReadLine(STDIN_FILENO, absl::Now() + absl::Seconds(10), -1);
  if (!given.ok()) return fail(Annotate(given.status(), "reading the network"));
  VmState state;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(*given, &state);
      !parsed.ok()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("the network handed over is not a VM state: ",
                     std::string(parsed.message()))));
  }
  if (absl::Status entered = EnterOwnNamespaces(); !entered.ok()) {
    return fail(entered);
  }
  if (absl::Status made = CreateTapAndTable(state); !made.ok()) {
    return fail(made);
  }
  say("ready");
  absl::StatusOr<std::string> request =
      ReadLine(STDIN_FILENO, absl::InfiniteFuture(), -1);
  if (!request.ok()) return 0;  // Asked to leave before the helper came.
  if (*request != "uplink") {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("unexpected request '", *request, "'")));
  }
  absl::StatusOr<std::string> uplink =
      WaitForUplink(state.network().tap(), absl::Seconds(15));
  if (!uplink.ok()) return fail(uplink.status());
  say(absl::StrCat("uplink ", *uplink));
  // Hold the namespaces until told to go (our stdin closes).
  char buffer[64];
  for (;;) {
    const ssize_t got = read(STDIN_FILENO, buffer, sizeof(buffer));
    if (got == 0 || (got < 0 && errno != EINTR)) return 0;
  }
}

[[nodiscard]] absl::StatusOr<RootlessNetwork> RootlessNetwork::Start(
    const VmState& state, std::vector<std::string> holder_argv,
    const std::string& dir, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string helper = state.network().mode();
  const std::string log = absl::StrCat(dir, "/", kLog);
  RootlessNetwork network;

  SubprocessOptions holder;
  holder.argv = std::move(holder_argv);
  holder.stdin_mode = StdioMode::kPipe;
  holder.stdout_mode = StdioMode::kPipe;
  holder.stderr_mode = StdioMode::kFile;
  holder.stderr_file = log;
  ASSIGN_OR_RETURN(Subprocess started, Subprocess::Start(std::move(holder)));
  network.holder_.emplace(std::move(started));
  // Hand over what the holder builds: the VM's id, network and ports.
  VmState handed;
  handed.set_id(state.id());
  *handed.mutable_network() = state.network();
  *handed.mutable_ports() = state.ports();
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(handed, &json).ok()) {
    return absl::InternalError("the VM's network does not print as JSON");
  }
  RETURN_IF_ERROR(WriteAll(network.holder_->stdin_pipe().get(),
                           absl::StrCat(json, "\n"), "netns holder"));
  // The holder's answers, or why there is none.
  auto answer = [&](int watch) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> line =
        ReadLine(network.holder_->stdout_pipe().get(), deadline, watch);
    if (line.ok() && absl::StartsWith(*line, "error: ")) {
      return absl::FailedPreconditionError(
          absl::StrCat("the VM's network namespace: ", line->substr(7)));
    }
    if (!line.ok()) {
      const std::string last = LastLogLine(dir);
      return absl::Status(
          line.status().code(),
          absl::StrCat("the VM's network namespace (", helper,
                       "): ", line.status().message(),
                       last.empty() ? "" : absl::StrCat(": ", last), "; see ",
                       log));
    }
    return line;
  };
  ASSIGN_OR_RETURN(std::string ready, answer(-1));
  if (ready != "ready") {
    return absl::DataLossError(
        absl::StrCat("netns holder said '", ready, "', not 'ready'"));
  }

  const std::string api = absl::StrCat(dir, "/slirp4netns.sock");
  const std::vector<PublishedPort> ports(state.ports().begin(),
                                         state.ports().end());
  SubprocessOptions options;
  options.argv =
      HelperArgv(helper, network.holder_->pid(), api, ports, geteuid() == 0);
  options.stdout_mode = options.stderr_mode = StdioMode::kFile;
  options.stdout_file = options.stderr_file = log;
  ASSIGN_OR_RETURN(started, Subprocess::Start(std::move(options)));
  network.helper_.emplace(std::move(started));

  RETURN_IF_ERROR(WriteAll(network.holder_->stdin_pipe().get(), "uplink\n",
                           "netns holder"));
  ASSIGN_OR_RETURN(std::string uplink, answer(network.helper_->exit_fd()));
  if (!absl::StartsWith(uplink, "uplink ")) {
    return absl::DataLossError(
        absl::StrCat("netns holder said '", uplink, "', not 'uplink ...'"));
  }
  network.uplink_ = uplink.substr(7);

  if (helper == kSlirp4netns) {
    for (const PublishedPort& port : ports) {
      absl::Status forwarded =
          SendToSlirp(api, SlirpHostForwardRequest(port),
                      std::max(deadline - absl::Now(), absl::Seconds(1)));
      if (!forwarded.ok()) {
        return Annotate(forwarded,
                        absl::StrCat("publishing 127.0.0.1:", port.host_port(),
                                     "/", port.protocol()));
      }
    }
  }
  return network;
}

}  // namespace fcvm::runner::net
