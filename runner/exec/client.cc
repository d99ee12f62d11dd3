#include "runner/exec/client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/eintr.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "channel/link.h"
#include "channel/names.h"

namespace fcvm::runner::exec {
namespace {

using channel::Frame;

constexpr char kChannelErrorUrl[] = "type.fcvm.dev/runner.exec.ChannelError";

absl::Status ChannelError(absl::Status status) {
  status.SetPayload(kChannelErrorUrl, absl::Cord("channel"));
  return status;
}

absl::Status ChannelError(absl::StatusCode code, absl::string_view message) {
  return ChannelError(absl::Status(code, message));
}

// The hub's or the agent's refusal of a session, as a status.
absl::Status FromErrorFrame(const channel::Error& error,
                            const std::string& vm_name) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (error.code()) {
    case channel::Error::UNAVAILABLE:
      code = absl::StatusCode::kUnavailable;
      break;
    case channel::Error::BAD_REQUEST:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case channel::Error::TOO_MANY:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case channel::Error::RESET:
      code = absl::StatusCode::kAborted;
      break;
    case channel::Error::VERSION:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    default:
      break;
  }
  std::string what = error.message();
  if (what.empty()) {
    switch (error.code()) {
      case channel::Error::UNAVAILABLE:
        what = "the agent is not reachable";
        break;
      case channel::Error::RESET:
        what = "the session is lost (the agent restarted)";
        break;
      default:
        what = channel::Error::Code_Name(error.code());
    }
  }
  // The hub names the VM itself in some messages.
  const std::string prefix = absl::StrCat("VM '", vm_name, "': ");
  if (absl::StartsWith(what, prefix)) return ChannelError(code, what);
  return ChannelError(code, absl::StrCat(prefix, what));
}

}  // namespace

bool IsChannelError(const absl::Status& status) {
  return status.GetPayload(kChannelErrorUrl).has_value();
}

// ---------------------------------------------------------------- Session

Session::~Session() {
  // Closing kills what the session runs: a caller that gives up on a copy
  // must not leave `podman cp` half-way in the guest.
  if (!end_.has_value()) {
    Frame frame;
    frame.mutable_close()->set_session(id_);
    (void)client_->Send(frame);
  }
  client_->sessions_.erase(id_);
}

absl::Status Session::SendStdin(absl::string_view bytes) {
  if (end_.has_value()) {
    RETURN_IF_ERROR(end_->status());
    return absl::FailedPreconditionError(absl::StrCat(
        "VM '", client_->vm_name(), "': session ", id_, " has ended"));
  }
  if (bytes.size() > stdin_credit_) {
    return absl::FailedPreconditionError(
        absl::StrCat("session ", id_, ": ", bytes.size(),
                     " bytes of stdin with ", stdin_credit_, " of credit"));
  }
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), channel::kMaxDataBytes);
    Frame frame;
    channel::Data& data = *frame.mutable_data();
    data.set_session(id_);
    data.set_stream(channel::STDIN);
    data.set_data(bytes.data(), n);
    stdin_credit_ -= n;
    bytes.remove_prefix(n);
    RETURN_IF_ERROR(client_->Send(frame));
  }
  return absl::OkStatus();
}

absl::Status Session::WriteStdin(absl::string_view bytes) {
  while (!bytes.empty()) {
    const size_t n = std::min<uint64_t>(bytes.size(), stdin_credit_);
    if (n == 0 || end_.has_value()) {
      if (end_.has_value()) return SendStdin(bytes);  // Says why.
      RETURN_IF_ERROR(Wait());
      continue;
    }
    RETURN_IF_ERROR(SendStdin(bytes.substr(0, n)));
    bytes.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status Session::CloseStdin() {
  if (end_.has_value()) return absl::OkStatus();  // Nobody reads it now.
  Frame frame;
  frame.mutable_data()->set_session(id_);
  frame.mutable_data()->set_stream(channel::STDIN);
  frame.mutable_data()->set_eof(true);
  return client_->Send(frame);
}

std::optional<channel::Data> Session::TakeOutput() {
  if (output_.empty()) return std::nullopt;
  channel::Data data = std::move(output_.front());
  output_.pop_front();
  return data;
}

absl::StatusOr<std::optional<channel::Data>> Session::NextOutput() {
  for (;;) {
    if (std::optional<channel::Data> data = TakeOutput()) return data;
    if (end_.has_value()) return std::nullopt;
    RETURN_IF_ERROR(Wait());
  }
}

void Session::Consumed(uint64_t bytes) {
  uncredited_ += bytes;
  if (uncredited_ >= channel::kWindowBytes / 4) client_->SendCredits(false);
}

absl::Status Session::Resize(uint32_t rows, uint32_t cols) {
  if (end_.has_value()) return absl::OkStatus();
  Frame frame;
  frame.mutable_resize()->set_session(id_);
  frame.mutable_resize()->mutable_size()->set_rows(rows);
  frame.mutable_resize()->mutable_size()->set_cols(cols);
  return client_->Send(frame);
}

absl::Status Session::Signal(int signo) {
  if (end_.has_value()) return absl::OkStatus();
  Frame frame;
  frame.mutable_signal()->set_session(id_);
  frame.mutable_signal()->set_signal(signo);
  return client_->Send(frame);
}

absl::Status Session::Wait() {
  absl::Status polled = client_->Poll({}, absl::InfiniteDuration());
  // A lost connection ends every session (Lose), this one included: its
  // end says so, after the output that came before.
  return end_.has_value() ? absl::OkStatus() : polled;
}

absl::Status Session::WaitEnd() {
  while (!end_.has_value()) RETURN_IF_ERROR(Wait());
  return end_->status();
}

absl::StatusOr<channel::Exit> Session::WaitExit() {
  RETURN_IF_ERROR(WaitEnd());
  if (!(*end_)->has_exit()) {
    return ChannelError(absl::StatusCode::kInternal,
                        absl::StrCat("VM '", client_->vm_name(), "': session ",
                                     id_, " ended without an Exit"));
  }
  return (*end_)->exit();
}

absl::StatusOr<channel::Stated> Session::WaitStated() {
  RETURN_IF_ERROR(WaitEnd());
  if (!(*end_)->has_stated()) {
    return ChannelError(absl::StatusCode::kInternal,
                        absl::StrCat("VM '", client_->vm_name(), "': session ",
                                     id_, " ended without a Stated"));
  }
  return (*end_)->stated();
}

// -------------------------------------------------------------- HubClient

HubClient::HubClient(UniqueFd fd, std::string vm_name, Options options)
    : fd_(std::move(fd)),
      vm_name_(std::move(vm_name)),
      options_(std::move(options)) {
  if (!options_.warn) {
    options_.warn = [](const std::string& message) {
      std::fprintf(stderr, "fcvm: warning: %s\n", message.c_str());
    };
  }
}

HubClient::~HubClient() = default;

absl::StatusOr<std::unique_ptr<HubClient>> HubClient::Connect(
    const std::string& vm_dir, const std::string& vm_name, Options options) {
  const std::string path = absl::StrCat(vm_dir, "/", channel::kHubSocket);
  absl::StatusOr<UniqueFd> fd =
      ConnectUnixStream(path, "the VM's control channel");
  if (absl::IsNotFound(fd.status())) {
    return ChannelError(
        absl::StatusCode::kUnavailable,
        absl::StrCat("VM '", vm_name,
                     "' has no control channel (it is not running, or was "
                     "started by an fcvm without one)"));
  }
  if (absl::IsUnavailable(fd.status())) {  // ECONNREFUSED.
    return ChannelError(
        absl::StatusCode::kUnavailable,
        absl::StrCat("VM '", vm_name, "' has no control channel (nothing ",
                     "listens on ", path,
                     ": its supervisor is gone, or it is not running)"));
  }
  if (!fd.ok()) {
    return ChannelError(
        Annotate(fd.status(), absl::StrCat("VM '", vm_name, "'")));
  }
  return Attach(*std::move(fd), vm_name, std::move(options));
}

absl::StatusOr<std::unique_ptr<HubClient>> HubClient::Attach(
    UniqueFd fd, const std::string& vm_name, Options options) {
  // Ours alone, so its flags are ours to set: every write is non-blocking.
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("control channel: fcntl O_NONBLOCK");
  }
  const absl::Duration hello_timeout = options.hello_timeout;
  std::unique_ptr<HubClient> client(
      new HubClient(std::move(fd), vm_name, std::move(options)));
  Frame frame;
  channel::Hello& hello = *frame.mutable_hello();
  hello.set_version(channel::kProtocolVersion);
  hello.set_role("client");
  hello.set_instance(channel::NewInstanceId());
  hello.set_reply(true);
  RETURN_IF_ERROR(client->Send(frame));
  const absl::Time deadline = absl::Now() + hello_timeout;
  while (!client->got_hello_) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return ChannelError(
          absl::StatusCode::kDeadlineExceeded,
          absl::StrCat("VM '", vm_name, "': its control channel did not ",
                       "answer our Hello within ",
                       absl::FormatDuration(hello_timeout)));
    }
    absl::Status polled = client->Poll({}, left);
    // A hub that said hello and went is for the sessions to find out.
    if (!polled.ok() && !client->got_hello_) return polled;
  }
  return client;
}

absl::StatusOr<std::unique_ptr<Session>> HubClient::Open(channel::Open open) {
  if (!lost_.ok()) return lost_;
  const uint64_t id = next_session_++;
  open.set_session(id);
  std::unique_ptr<Session> session(new Session(this, id));
  sessions_[id] = session.get();
  Frame frame;
  *frame.mutable_open() = std::move(open);
  RETURN_IF_ERROR(Send(frame));
  return session;
}

absl::Status HubClient::Poll(absl::Span<pollfd> extra, absl::Duration timeout) {
  if (!lost_.ok()) return lost_;
  if (timeout != absl::ZeroDuration()) SendCredits(true);
  RETURN_IF_ERROR(Flush());
  std::vector<pollfd> fds;
  fds.reserve(1 + extra.size());
  fds.push_back(
      {fd_.get(),
       static_cast<short>(POLLIN | (out_start_ < out_.size() ? POLLOUT : 0)),
       0});
  fds.insert(fds.end(), extra.begin(), extra.end());
  int timeout_ms = -1;
  if (timeout != absl::InfiniteDuration()) {
    timeout_ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))),
        INT32_MAX));
  }
  const int n =
      RetryEintr([&] { return poll(fds.data(), fds.size(), timeout_ms); });
  if (n < 0) return ErrnoStatus("poll");
  for (size_t i = 0; i < extra.size(); ++i) {
    extra[i].revents = fds[i + 1].revents;
  }
  const short events = fds[0].revents;
  if (events & POLLOUT) RETURN_IF_ERROR(Flush());
  if (events & (POLLIN | POLLHUP | POLLERR)) RETURN_IF_ERROR(ReadSome());
  return lost_;
}

absl::Status HubClient::Send(const Frame& frame) {
  if (!lost_.ok()) return lost_;
  if (write_closed_) return absl::OkStatus();  // ReadSome will say why.
  out_ += channel::EncodeFrame(frame);
  return Flush();
}

absl::Status HubClient::Flush() {
  while (out_start_ < out_.size() && !write_closed_) {
    const ssize_t n = RetryEintr([&] {
      return send(fd_.get(), out_.data() + out_start_, out_.size() - out_start_,
                  MSG_NOSIGNAL | MSG_DONTWAIT);
    });
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      // Frames the hub sent before it went may still be there to read.
      write_closed_ = true;
      break;
    }
    if (n < 0) {
      Lose(ErrnoStatus(absl::StrCat("VM '", vm_name_, "': control channel")));
      return lost_;
    }
    out_start_ += n;
  }
  if (out_start_ == out_.size() || write_closed_) {
    out_.clear();
    out_start_ = 0;
  }
  return absl::OkStatus();
}

absl::Status HubClient::ReadSome() {
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n =
        RetryEintr([&] { return read(fd_.get(), buffer, sizeof(buffer)); });
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno != ECONNRESET) {
      Lose(ErrnoStatus(absl::StrCat("VM '", vm_name_, "': control channel")));
      return lost_;
    }
    if (n <= 0) {
      Lose(absl::UnavailableError(
          absl::StrCat("VM '", vm_name_,
                       "': the control channel closed (the VM's supervisor "
                       "stopped or restarted)")));
      return lost_;
    }
    reader_.Feed(absl::string_view(buffer, n));
    for (;;) {
      absl::StatusOr<std::optional<Frame>> frame = reader_.Next();
      if (!frame.ok()) {
        // Our own hub over a local socket: garbage means a bug, not noise.
        Lose(absl::DataLossError(absl::StrCat(
            "VM '", vm_name_, "': the hub sent ", frame.status().message())));
        return lost_;
      }
      if (!frame->has_value()) break;
      RETURN_IF_ERROR(Dispatch(**frame));
    }
  }
  return absl::OkStatus();
}

Session* HubClient::Find(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || it->second->end_.has_value()) return nullptr;
  return it->second;
}

absl::Status HubClient::Dispatch(const Frame& frame) {
  switch (frame.body_case()) {
    case Frame::kHello: {
      const channel::Hello& hello = frame.hello();
      if (hello.role() != "hub" ||
          hello.version() != channel::kProtocolVersion) {
        Lose(absl::FailedPreconditionError(
            absl::StrCat("VM '", vm_name_, "': its control channel is '",
                         hello.role(), "' speaking protocol ", hello.version(),
                         ", not a hub speaking ", channel::kProtocolVersion)));
        return lost_;
      }
      got_hello_ = true;
      hello_.agent_up = hello.agent_up();
      hello_.transport = hello.transport();
      hello_.agent_version = hello.agent_version();
      return absl::OkStatus();
    }
    case Frame::kData: {
      const channel::Data& data = frame.data();
      Session* session = Find(data.session());
      // Empty frames (an eof) carry nothing: the Exit ends the session.
      if (session == nullptr || data.data().empty() ||
          (data.stream() != channel::STDOUT &&
           data.stream() != channel::STDERR)) {
        return absl::OkStatus();
      }
      session->in_flight_ += data.data().size();
      if (session->in_flight_ > channel::kWindowBytes) {
        // A guest that ignores credit would grow this process without
        // end: stop reading it.
        return absl::DataLossError(absl::StrCat(
            "VM '", vm_name_, "': its agent sent more than the session's ",
            channel::kWindowBytes, "-byte window"));
      }
      session->output_.push_back(data);
      return absl::OkStatus();
    }
    case Frame::kCredit:
      if (Session* session = Find(frame.credit().session())) {
        // Never more than the window, whatever the guest says: what this
        // client sends waits in the hub until the agent takes it.
        session->stdin_credit_ =
            std::min<uint64_t>(session->stdin_credit_ + frame.credit().bytes(),
                               channel::kWindowBytes);
      }
      return absl::OkStatus();
    case Frame::kStarted:
      if (Session* session = Find(frame.started().session())) {
        session->started_id_ = frame.started().id();
      }
      return absl::OkStatus();
    case Frame::kExit:
      if (Session* session = Find(frame.exit().session())) {
        session->end_ = frame;
      }
      return absl::OkStatus();
    case Frame::kStated:
      if (Session* session = Find(frame.stated().session())) {
        session->end_ = frame;
      }
      return absl::OkStatus();
    case Frame::kError: {
      const channel::Error& error = frame.error();
      if (error.session() != 0) {
        if (Session* session = Find(error.session())) {
          session->end_ = FromErrorFrame(error, vm_name_);
        }
        return absl::OkStatus();
      }
      if (error.code() == channel::Error::VERSION) {
        Lose(FromErrorFrame(error, vm_name_));
        return lost_;
      }
      options_.warn(absl::StrCat("VM '", vm_name_,
                                 "': control channel: ", error.message()));
      return absl::OkStatus();
    }
    case Frame::BODY_NOT_SET: {
      // A newer hub's frame: say so, as channel.proto asks, and go on.
      Frame answer;
      answer.mutable_error()->set_code(channel::Error::UNKNOWN_MESSAGE);
      answer.mutable_error()->set_message(
          absl::StrCat("unknown message for channel protocol ",
                       channel::kProtocolVersion, " (fcvm client)"));
      return Send(answer);
    }
    default:
      return absl::OkStatus();  // Frames that go the other way.
  }
}

void HubClient::Lose(const absl::Status& why) {
  if (!lost_.ok()) return;
  lost_ = ChannelError(why);
  for (auto& [id, session] : sessions_) {
    if (!session->end_.has_value()) session->end_ = lost_;
  }
}

void HubClient::SendCredits(bool all) {
  for (auto& [id, session] : sessions_) {
    if (session->uncredited_ == 0 || session->end_.has_value()) continue;
    if (!all && session->uncredited_ < channel::kWindowBytes / 4) continue;
    Frame frame;
    frame.mutable_credit()->set_session(id);
    frame.mutable_credit()->set_bytes(session->uncredited_);
    session->in_flight_ -= std::min(session->in_flight_, session->uncredited_);
    session->uncredited_ = 0;
    // A failure here is the connection's: Poll reports it.
    (void)Send(frame);
  }
}

}  // namespace fcvm::runner::exec
