#include "runner/exec/testing/fake_hub.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/unix_socket.h"
#include "channel/names.h"
#include "gtest/gtest.h"

namespace fcvm::runner::exec::testing {

using channel::Frame;
using channel::kWindowBytes;

absl::StatusOr<std::unique_ptr<FakeHub>> FakeHub::Start(const std::string& dir,
                                                        Serve serve,
                                                        Options options) {
  const std::string path = absl::StrCat(dir, "/", channel::kHubSocket);
  absl::StatusOr<UniqueFd> listener = ListenUnixStream(path, 0600, "fake hub");
  if (!listener.ok()) return listener.status();
  absl::StatusOr<Pipe> wake = MakePipe();
  if (!wake.ok()) return wake.status();
  return std::unique_ptr<FakeHub>(new FakeHub(
      path, *std::move(listener), *std::move(wake), std::move(serve), options));
}

FakeHub::FakeHub(std::string path, UniqueFd listener, Pipe wake, Serve serve,
                 Options options)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      serve_(std::move(serve)),
      options_(options) {
  thread_ = std::thread([this] { Run(); });
}

FakeHub::~FakeHub() {
  (void)!write(wake_.write.get(), "x", 1);
  thread_.join();
  unlink(path_.c_str());  // As the supervisor does when its hub ends.
}

std::vector<std::string> FakeHub::violations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return violations_;
}

channel::Hello FakeHub::client_hello() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return client_hello_;
}

void FakeHub::Violation(const std::string& what) {
  ADD_FAILURE() << "the client broke the protocol: " << what;
  std::lock_guard<std::mutex> lock(mutex_);
  violations_.push_back(what);
}

void FakeHub::Run() {
  for (int served = 0; served < options_.connections; ++served) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0},
                     {wake_.read.get(), POLLIN, 0}};
    if (RetryEintr([&] { return poll(fds, 2, -1); }) < 0 ||
        (fds[1].revents & POLLIN)) {
      return;
    }
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) return;
    // A client that stops talking fails the test instead of hanging it.
    timeval timeout = {20, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    Connection connection(this, std::move(fd));
    std::optional<Frame> hello = connection.ReadFrame();
    if (!hello.has_value() || !hello->has_hello()) {
      Violation("the client's first frame is not a Hello");
      continue;
    }
    if (hello->hello().role() != "client" ||
        hello->hello().version() != channel::kProtocolVersion ||
        hello->hello().instance().empty()) {
      Violation(absl::StrCat("a Hello of role '", hello->hello().role(),
                             "', version ", hello->hello().version()));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      client_hello_ = hello->hello();
    }
    Frame answer;
    channel::Hello& ours = *answer.mutable_hello();
    ours.set_version(channel::kProtocolVersion);
    ours.set_role("hub");
    ours.set_instance("fake-hub-instance");
    ours.set_agent_up(options_.agent_up);
    ours.set_transport("vsock");
    ours.set_agent_version("fake-agent 1");
    connection.Send(answer);
    serve_(connection);
  }
}

std::optional<Frame> FakeHub::Connection::ReadFrame() {
  for (;;) {
    absl::StatusOr<std::optional<Frame>> next = reader_.Next();
    if (!next.ok()) {
      hub_->Violation(absl::StrCat("bad frame: ", next.status().message()));
      return std::nullopt;
    }
    if (next->has_value()) {
      Frame& frame = **next;
      if (frame.seq() != 0 || frame.ack() != 0) {
        hub_->Violation("seq or ack set on the client's hop");
      }
      if (frame.has_data() && frame.data().stream() == channel::STDIN) {
        const uint64_t size = frame.data().data().size();
        Window& window = in_[frame.data().session()];
        if (size > channel::kMaxDataBytes) {
          hub_->Violation(absl::StrCat("a Data frame of ", size, " bytes"));
        }
        if (window.used + size > kWindowBytes) {
          hub_->Violation(absl::StrCat(
              "session ", frame.data().session(), ": ", size,
              " bytes of STDIN with ",
              window.used >= kWindowBytes ? 0 : kWindowBytes - window.used,
              " bytes of credit left"));
        }
        window.used += size;
      }
      if (frame.has_credit()) {
        Window& window = out_[frame.credit().session()];
        if (frame.credit().bytes() > window.used) {
          hub_->Violation(absl::StrCat("session ", frame.credit().session(),
                                       ": credit for ", frame.credit().bytes(),
                                       " bytes, ", window.used, " were sent"));
        }
        window.used -= std::min(window.used, frame.credit().bytes());
      }
      return std::move(frame);
    }
    if (hung_up_) return std::nullopt;
    char buffer[64 * 1024];
    const ssize_t n =
        RetryEintr([&] { return read(fd_.get(), buffer, sizeof(buffer)); });
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      hub_->Violation("the client said nothing for 20 s");
    }
    if (n <= 0) {
      hung_up_ = true;
      return std::nullopt;
    }
    reader_.Feed(absl::string_view(buffer, n));
  }
}

std::optional<Frame> FakeHub::Connection::Next() {
  if (!kept_.empty()) {
    Frame frame = std::move(kept_.front());
    kept_.erase(kept_.begin());
    return frame;
  }
  for (;;) {
    std::optional<Frame> frame = ReadFrame();
    if (!frame.has_value() || !frame->has_credit()) return frame;
  }
}

void FakeHub::Connection::Send(const Frame& frame) {
  const std::string bytes = channel::EncodeFrame(frame);
  size_t sent = 0;
  while (sent < bytes.size()) {
    // MSG_NOSIGNAL: a client that went away must not kill the test.
    const ssize_t n = RetryEintr([&] {
      return send(fd_.get(), bytes.data() + sent, bytes.size() - sent,
                  MSG_NOSIGNAL);
    });
    if (n <= 0) return;  // Gone: the test's own checks say what matters.
    sent += n;
  }
}

void FakeHub::Connection::SendData(uint64_t session, channel::Stream stream,
                                   absl::string_view bytes, bool eof) {
  Window& window = out_[session];
  do {
    const size_t n = std::min(bytes.size(), channel::kMaxDataBytes);
    while (kWindowBytes - window.used < n) {
      std::optional<Frame> frame = ReadFrame();
      if (!frame.has_value()) return;
      if (!frame->has_credit()) kept_.push_back(*std::move(frame));
    }
    Frame frame;
    channel::Data& data = *frame.mutable_data();
    data.set_session(session);
    data.set_stream(stream);
    data.set_data(bytes.data(), n);
    bytes.remove_prefix(n);
    data.set_eof(eof && bytes.empty());
    window.used += n;
    Send(frame);
  } while (!bytes.empty());
}

void FakeHub::Connection::Credit(uint64_t session, uint64_t bytes) {
  Window& window = in_[session];
  window.used -= std::min(window.used, bytes);
  Frame frame;
  frame.mutable_credit()->set_session(session);
  frame.mutable_credit()->set_bytes(bytes);
  Send(frame);
}

void FakeHub::Connection::Started(uint64_t session, const std::string& id) {
  Frame frame;
  frame.mutable_started()->set_session(session);
  frame.mutable_started()->set_id(id);
  Send(frame);
}

void FakeHub::Connection::Error(uint64_t session, channel::Error::Code code,
                                const std::string& message) {
  Frame frame;
  frame.mutable_error()->set_session(session);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(message);
  Send(frame);
}

void FakeHub::Connection::Finish(uint64_t session, channel::Exit exit) {
  SendData(session, channel::STDOUT, "", true);
  SendData(session, channel::STDERR, "", true);
  Frame frame;
  exit.set_session(session);
  *frame.mutable_exit() = std::move(exit);
  Send(frame);
}

}  // namespace fcvm::runner::exec::testing
