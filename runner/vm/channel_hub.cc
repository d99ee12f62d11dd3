#include "runner/vm/channel_hub.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <list>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "channel/frame.h"
#include "channel/link.h"
#include "channel/names.h"
#include "google/protobuf/util/json_util.h"
#include "runner/vm/control.pb.h"

namespace fcvm::runner {
namespace {

using channel::Frame;
using Clock = std::chrono::steady_clock;

// A client's output beyond this (it does not read what it asked for) ends
// it: the agent's credits already bound what its sessions produce.
constexpr size_t kMaxClientBacklog = 32 << 20;

uint64_t SessionOf(const Frame& frame) {
  switch (frame.body_case()) {
    case Frame::kOpen:
      return frame.open().session();
    case Frame::kData:
      return frame.data().session();
    case Frame::kCredit:
      return frame.credit().session();
    case Frame::kResize:
      return frame.resize().session();
    case Frame::kSignal:
      return frame.signal().session();
    case Frame::kStarted:
      return frame.started().session();
    case Frame::kExit:
      return frame.exit().session();
    case Frame::kClose:
      return frame.close().session();
    case Frame::kError:
      return frame.error().session();
    case Frame::kStated:
      return frame.stated().session();
    default:
      return 0;
  }
}

void SetSession(Frame& frame, uint64_t id) {
  switch (frame.body_case()) {
    case Frame::kOpen:
      frame.mutable_open()->set_session(id);
      break;
    case Frame::kData:
      frame.mutable_data()->set_session(id);
      break;
    case Frame::kCredit:
      frame.mutable_credit()->set_session(id);
      break;
    case Frame::kResize:
      frame.mutable_resize()->set_session(id);
      break;
    case Frame::kSignal:
      frame.mutable_signal()->set_session(id);
      break;
    case Frame::kStarted:
      frame.mutable_started()->set_session(id);
      break;
    case Frame::kExit:
      frame.mutable_exit()->set_session(id);
      break;
    case Frame::kClose:
      frame.mutable_close()->set_session(id);
      break;
    case Frame::kError:
      frame.mutable_error()->set_session(id);
      break;
    case Frame::kStated:
      frame.mutable_stated()->set_session(id);
      break;
    default:
      break;
  }
}

Frame ErrorFrame(uint64_t session, channel::Error::Code code,
                 const std::string& message) {
  Frame frame;
  frame.mutable_error()->set_session(session);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(message);
  return frame;
}

struct Client {
  UniqueFd fd;
  channel::FrameReader reader;
  std::string out;
  size_t out_start = 0;
  std::map<uint64_t, uint64_t> sessions;  // Client's id -> link's id.
  bool closing = false;

  void Queue(const Frame& frame) { out += channel::EncodeFrame(frame); }
};

struct Route {
  Client* client;
  uint64_t client_session;
  bool detach;
};

// An Open that waits for the agent, with what its client sent after it.
struct PendingOpen {
  Client* client;
  uint64_t client_session;
  Frame open;  // Renumbered already.
  std::vector<Frame> later;
  Clock::time_point deadline;
};

class Hub {
 public:
  Hub(HubOptions options, UniqueFd listener, int stop)
      : options_(std::move(options)),
        listener_(std::move(listener)),
        stop_(stop),
        link_("hub") {}

  void Serve();

 private:
  // What the guest says reaches supervisor.log (not rotated) and perhaps
  // a terminal: escaped, cut at 300 bytes, and only the first 100 lines
  // (then one saying so), whatever a guest sends.
  void Log(absl::string_view message) {
    if (logged_ > kMaxLogLines) return;
    const std::string text =
        logged_++ == kMaxLogLines
            ? "more channel messages follow; no more are logged"
            : absl::CHexEscape(message.substr(0, 300));
    std::fprintf(stderr, "fcvm: %s: channel: %s\n", options_.vm_name.c_str(),
                 text.c_str());
  }
  static constexpr int kMaxLogLines = 100;
  int logged_ = 0;
  // Connects to the VMM's socket: attaches the link (virtio-serial), or
  // sends vsock's CONNECT and leaves the answer to ContinueHandshake, so
  // that clients are served while Firecracker waits for the guest.
  [[nodiscard]] absl::Status Connect();
  // Reads what arrived of the answer to CONNECT; attaches the link once
  // it is "OK <port>".
  [[nodiscard]] absl::Status ContinueHandshake();
  void OnAgentFrame(Frame& frame);
  void OnAgentPeer(const channel::Hello& hello, bool resumed);
  void OnClientFrame(Client& client, Frame& frame);
  void DropClient(Client& client);
  bool agent_up() const { return link_.attached() && link_.up(); }

  HubOptions options_;
  UniqueFd listener_;
  const int stop_;
  channel::Link link_;
  std::string agent_version_;
  std::list<Client> clients_;
  std::map<uint64_t, Route> routes_;  // Link's session id -> client.
  std::list<PendingOpen> pending_;
  uint64_t next_session_ = 1;
  // A vsock connection waiting for its "OK <port>\n".
  struct Handshake {
    UniqueFd fd;
    std::string answer;
    Clock::time_point deadline;
  };
  std::optional<Handshake> handshake_;
};

absl::Status Hub::Connect() {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixStream(options_.guest_socket,
                                                  "the VM's channel"));
  if (fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return ErrnoStatus("the VM's channel");
  }
  if (options_.transport != "vsock") {
    link_.Attach(std::move(fd));
    return absl::OkStatus();
  }
  // Firecracker's host-initiated vsock: "CONNECT <port>\n", answered
  // "OK <host port>\n" once the guest accepted, or the socket closes.
  // MSG_NOSIGNAL: Firecracker may have closed it already.
  const std::string request =
      absl::StrCat("CONNECT ", channel::kVsockPort, "\n");
  if (send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return ErrnoStatus("vsock CONNECT");
  }
  handshake_ =
      Handshake{std::move(fd), "", Clock::now() + std::chrono::seconds(2)};
  return absl::OkStatus();
}

absl::Status Hub::ContinueHandshake() {
  Handshake& handshake = *handshake_;
  // A byte at a time: what follows the line is the agent's, for the link.
  while (handshake.answer.empty() || handshake.answer.back() != '\n') {
    if (handshake.answer.size() >= 64) break;
    char c;
    const ssize_t got = read(handshake.fd.get(), &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return absl::OkStatus();
    if (got <= 0) {
      return absl::UnavailableError(
          "vsock: the guest does not listen on the channel's port yet");
    }
    handshake.answer.push_back(c);
  }
  if (!absl::StartsWith(handshake.answer, "OK ")) {
    return absl::UnavailableError(
        absl::StrCat("vsock: CONNECT answered '", handshake.answer, "'"));
  }
  link_.Attach(std::move(handshake.fd));
  handshake_.reset();
  return absl::OkStatus();
}

void Hub::OnAgentPeer(const channel::Hello& hello, bool resumed) {
  agent_version_ = hello.agent_version();
  if (resumed) return;
  // A new agent (restarted, or this is a restored clone's and the sessions
  // were its original's): what ran is gone.
  for (auto& [id, route] : routes_) {
    if (route.client == nullptr) continue;
    route.client->Queue(ErrorFrame(
        route.client_session, channel::Error::RESET,
        absl::StrCat("VM '", options_.vm_name,
                     "': the agent's channel restarted; the session is lost")));
    route.client->sessions.erase(route.client_session);
  }
  routes_.clear();
  Log(absl::StrCat("the agent (", hello.agent_version(), ") is up"));
}

void Hub::OnAgentFrame(Frame& frame) {
  const uint64_t id = SessionOf(frame);
  if (id == 0) {
    if (frame.has_error())
      Log(absl::StrCat("agent: ", frame.error().message()));
    return;
  }
  auto it = routes_.find(id);
  if (it == routes_.end()) return;  // Its client left.
  Route route = it->second;
  const bool last = frame.has_exit() || frame.has_stated() || frame.has_error();
  if (last) routes_.erase(it);
  if (route.client == nullptr) return;
  // The link's numbering is between the hub and the agent only.
  frame.set_seq(0);
  frame.set_ack(0);
  SetSession(frame, route.client_session);
  route.client->Queue(frame);
  if (last) route.client->sessions.erase(route.client_session);
}

void Hub::OnClientFrame(Client& client, Frame& frame) {
  frame.set_seq(0);
  frame.set_ack(0);
  switch (frame.body_case()) {
    case Frame::kHello: {
      Frame hello;
      channel::Hello& h = *hello.mutable_hello();
      h.set_version(channel::kProtocolVersion);
      h.set_role("hub");
      h.set_agent_up(agent_up());
      h.set_transport(options_.transport);
      h.set_agent_version(agent_version_);
      client.Queue(hello);
      return;
    }
    case Frame::kOpen: {
      const uint64_t mine = frame.open().session();
      if (mine == 0 || client.sessions.count(mine) != 0) {
        client.Queue(ErrorFrame(mine, channel::Error::BAD_REQUEST,
                                mine == 0 ? "session 0 is not a session"
                                          : "a session number already in use"));
        return;
      }
      const uint64_t id = next_session_++;
      client.sessions[mine] = id;
      SetSession(frame, id);
      if (agent_up()) {
        routes_[id] = {&client, mine,
                       frame.open().has_exec() && frame.open().exec().detach()};
        link_.Send(std::move(frame));
      } else {
        pending_.push_back(
            {&client,
             mine,
             std::move(frame),
             {},
             Clock::now() + absl::ToChronoMilliseconds(options_.open_wait)});
      }
      return;
    }
    case Frame::kData:
    case Frame::kCredit:
    case Frame::kResize:
    case Frame::kSignal:
    case Frame::kClose: {
      auto it = client.sessions.find(SessionOf(frame));
      if (it == client.sessions.end()) return;  // Ended already.
      const uint64_t id = it->second;
      if (frame.has_close()) {
        client.sessions.erase(it);
        routes_.erase(id);
      }
      SetSession(frame, id);
      // Frames of a session still waiting for the agent wait with it.
      for (PendingOpen& pending : pending_) {
        if (pending.open.open().session() != id) continue;
        if (frame.has_close()) {
          pending.client = nullptr;
        } else {
          pending.later.push_back(std::move(frame));
        }
        return;
      }
      link_.Send(std::move(frame));
      return;
    }
    case Frame::BODY_NOT_SET:
      client.Queue(ErrorFrame(0, channel::Error::UNKNOWN_MESSAGE,
                              "unknown message for channel protocol 1"));
      return;
    default:
      client.Queue(ErrorFrame(SessionOf(frame), channel::Error::BAD_REQUEST,
                              "not a message a client sends"));
      return;
  }
}

void Hub::DropClient(Client& client) {
  for (const auto& [mine, id] : client.sessions) {
    auto it = routes_.find(id);
    if (it == routes_.end()) continue;
    const bool detach = it->second.detach;
    routes_.erase(it);
    if (detach) continue;
    // The client went away mid-session: its processes go too.
    Frame close;
    close.mutable_close()->set_session(id);
    link_.Send(std::move(close));
  }
  client.sessions.clear();
  for (PendingOpen& pending : pending_) {
    if (pending.client == &client) pending.client = nullptr;
  }
  client.fd.reset();
}

void Hub::Serve() {
  channel::Link::Handler handler;
  handler.frame = [this](Frame& frame) { OnAgentFrame(frame); };
  handler.peer = [this](const channel::Hello& hello, bool resumed) {
    OnAgentPeer(hello, resumed);
  };
  handler.garbage = [this](const absl::Status& error) { Log(error.message()); };
  Clock::time_point next_connect = Clock::now();
  auto backoff = std::chrono::milliseconds(20);
  // A connection (or its handshake) failed: try again later.
  auto retry = [&] {
    handshake_.reset();
    next_connect = Clock::now() + backoff;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  };
  // When to say Hello again to an agent that has not answered.
  Clock::time_point hello_again;
  for (;;) {
    const auto now = Clock::now();
    if (!link_.attached() && !handshake_ && now >= next_connect) {
      if (absl::Status connected = Connect(); !connected.ok()) {
        retry();
      } else if (link_.attached()) {
        backoff = std::chrono::milliseconds(20);
      }
    }
    if (handshake_ && now >= handshake_->deadline) retry();  // No answer.
    // Attached but no Hello back: say it again now and then (a Hello can
    // be lost in a resynchronising reader; the agent may have been busy).
    if (link_.attached() && !link_.up() && now >= hello_again) {
      if (hello_again != Clock::time_point()) link_.Reset();
      hello_again = now + std::chrono::seconds(1);
    }
    // Opens that waited for the agent: now, or never.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->client == nullptr) {
        it = pending_.erase(it);
      } else if (agent_up()) {
        const uint64_t id = it->open.open().session();
        routes_[id] = {
            it->client, it->client_session,
            it->open.open().has_exec() && it->open.open().exec().detach()};
        link_.Send(std::move(it->open));
        for (Frame& frame : it->later) link_.Send(std::move(frame));
        it = pending_.erase(it);
      } else if (now >= it->deadline) {
        it->client->Queue(ErrorFrame(
            it->client_session, channel::Error::UNAVAILABLE,
            absl::StrCat("VM '", options_.vm_name, "': its agent's channel ",
                         "is not up (waited ",
                         absl::FormatDuration(options_.open_wait), ")")));
        it->client->sessions.erase(it->client_session);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    std::vector<pollfd> fds = {{stop_, POLLIN, 0},
                               {listener_.get(), POLLIN, 0}};
    const size_t handshake_at = fds.size();
    if (handshake_) fds.push_back({handshake_->fd.get(), POLLIN, 0});
    const size_t link_at = fds.size();
    if (link_.attached()) {
      fds.push_back(
          {link_.fd(),
           static_cast<short>(POLLIN | (link_.wants_write() ? POLLOUT : 0)),
           0});
    }
    const size_t clients_at = fds.size();
    std::vector<Client*> polled;
    for (Client& client : clients_) {
      short events = POLLIN;
      if (client.out.size() > client.out_start) events |= POLLOUT;
      fds.push_back({client.fd.get(), events, 0});
      polled.push_back(&client);
    }
    Clock::time_point wake = Clock::now() + std::chrono::seconds(60);
    if (link_.attached() && !link_.up()) wake = std::min(wake, hello_again);
    if (!link_.attached()) hello_again = Clock::time_point();
    if (handshake_) {
      wake = std::min(wake, handshake_->deadline);
    } else if (!link_.attached()) {
      wake = std::min(wake, next_connect);
    }
    for (const PendingOpen& pending : pending_) {
      wake = std::min(wake, pending.deadline);
    }
    const int timeout_ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake -
                                                                 Clock::now())
                   .count() +
               1));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      Log(ErrnoStatus("poll").ToString());
      return;
    }
    if (n <= 0) continue;
    if (fds[0].revents != 0) return;
    if (handshake_ && fds[handshake_at].revents != 0) {
      // The link is attached only when the handshake ends, so fds[link_at]
      // was not the link's in this round.
      if (absl::Status answered = ContinueHandshake(); !answered.ok()) {
        retry();
      } else if (link_.attached()) {
        backoff = std::chrono::milliseconds(20);
      }
    } else if (link_.attached() && fds[link_at].revents != 0) {
      absl::Status status = absl::OkStatus();
      if (fds[link_at].revents & (POLLIN | POLLHUP | POLLERR)) {
        status = link_.OnReadable(handler);
      }
      if (!status.ok()) {
        // QEMU or Firecracker closed it (the VMM is ending), or a restore
        // reset it: connect again, sessions kept for the same agent.
        link_.Detach();
        next_connect = Clock::now() + std::chrono::milliseconds(50);
      }
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      Client& client = *polled[i];
      const short revents = fds[clients_at + i].revents;
      if (revents == 0 || !client.fd) continue;
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        char buffer[65536];
        const ssize_t got = read(client.fd.get(), buffer, sizeof(buffer));
        if (got > 0) {
          client.reader.Feed(absl::string_view(buffer, got));
          for (;;) {
            absl::StatusOr<std::optional<Frame>> next = client.reader.Next();
            if (!next.ok()) {
              // Not our protocol: say so once and hang up.
              client.Queue(ErrorFrame(0, channel::Error::BAD_FRAME,
                                      std::string(next.status().message())));
              client.closing = true;
              break;
            }
            if (!next->has_value()) break;
            OnClientFrame(client, **next);
          }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          DropClient(client);
          continue;
        }
      }
      while (client.fd && client.out_start < client.out.size()) {
        const ssize_t put =
            write(client.fd.get(), client.out.data() + client.out_start,
                  client.out.size() - client.out_start);
        if (put > 0) {
          client.out_start += put;
          continue;
        }
        if (put < 0 && (errno == EAGAIN || errno == EINTR)) break;
        DropClient(client);
        break;
      }
      if (client.out_start == client.out.size()) {
        client.out.clear();
        client.out_start = 0;
        if (client.closing) DropClient(client);
      } else if (client.out.size() - client.out_start > kMaxClientBacklog) {
        Log("a client does not read its output: dropping it");
        DropClient(client);
      }
    }
    if (fds[1].revents != 0) {
      UniqueFd accepted(accept4(listener_.get(), nullptr, nullptr,
                                SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!accepted && (errno == EMFILE || errno == ENFILE)) {
        usleep(100 * 1000);  // Not a hot loop while fds are short.
      }
      if (accepted) {
        clients_.emplace_back();
        clients_.back().fd = std::move(accepted);
      }
    }
    clients_.remove_if([](const Client& c) { return !c.fd.valid(); });
    if (link_.attached()) {
      if (absl::Status flushed = link_.Flush(); !flushed.ok()) {
        link_.Detach();
        next_connect = Clock::now() + std::chrono::milliseconds(50);
      }
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChannelHub>> ChannelHub::Start(
    HubOptions options, UniqueFd listener) {
  std::unique_ptr<ChannelHub> hub(new ChannelHub());
  hub->stop_.reset(eventfd(0, EFD_CLOEXEC));
  if (!hub->stop_) return ErrnoStatus("eventfd for the channel hub");
  if (fcntl(listener.get(), F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoStatus("the channel socket");
  }
  const int stop = hub->stop_.get();
  hub->thread_ = std::thread(
      [stop, options = std::move(options),
       listener = std::make_shared<UniqueFd>(std::move(listener))]() mutable {
        Hub(std::move(options), std::move(*listener), stop).Serve();
      });
  return hub;
}

ChannelHub::~ChannelHub() {
  const uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

ChannelStatus ProbeChannel(const std::string& dir, absl::Duration timeout) {
  ChannelStatus status;
  absl::StatusOr<UniqueFd> fd = ConnectUnixStream(
      absl::StrCat(dir, "/", channel::kHubSocket), "the VM's channel");
  if (!fd.ok()) return status;
  Frame hello;
  hello.mutable_hello()->set_version(channel::kProtocolVersion);
  hello.mutable_hello()->set_role("client");
  hello.mutable_hello()->set_instance(channel::NewInstanceId());
  const std::string bytes = channel::EncodeFrame(hello);
  if (write(fd->get(), bytes.data(), bytes.size()) !=
      static_cast<ssize_t>(bytes.size())) {
    return status;
  }
  channel::FrameReader reader;
  const auto deadline = Clock::now() + absl::ToChronoMilliseconds(timeout);
  for (;;) {
    const int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - Clock::now())
                             .count());
    pollfd pfd = {fd->get(), POLLIN, 0};
    if (left <= 0 || poll(&pfd, 1, left) != 1) return status;
    char buffer[4096];
    const ssize_t got = read(fd->get(), buffer, sizeof(buffer));
    if (got <= 0) return status;
    reader.Feed(absl::string_view(buffer, got));
    absl::StatusOr<std::optional<Frame>> next = reader.Next();
    if (!next.ok()) return status;
    if (!next->has_value()) continue;
    if (!(*next)->has_hello()) return status;
    const channel::Hello& h = (*next)->hello();
    status.listening = true;
    status.agent_up = h.agent_up();
    status.transport = h.transport();
    status.agent_version = h.agent_version();
    return status;
  }
}

std::string ChannelJson(const ChannelStatus& status) {
  ChannelInfo info;
  info.set_up(status.agent_up);
  info.set_transport(status.transport);
  info.set_agent(status.agent_version);
  // Every field, false and empty ones too: readers look for "up" and the
  // header promises it.
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(info, &json, options);
  return json;
}

}  // namespace fcvm::runner
