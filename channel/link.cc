#include "channel/link.h"

#include <errno.h>
#include <sys/random.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::channel {
namespace {

// Drops the output in `out` not written yet (from `start` on), except the
// rest of a frame partly written: the peer's reader may still be in step
// and must see it whole, or it takes what comes next for the rest of that
// frame. `out` holds whole frames from its front, as Encode appends them.
void DropUnwritten(std::string& out, size_t& start) {
  size_t end = 0;
  while (end < start) {
    // The frame's length from its header, as EncodeFrame wrote it.
    const absl::string_view header = absl::string_view(out).substr(end, 8);
    end += kHeaderBytes + ((uint32_t{static_cast<uint8_t>(header[4])} << 24) |
                           (uint32_t{static_cast<uint8_t>(header[5])} << 16) |
                           (uint32_t{static_cast<uint8_t>(header[6])} << 8) |
                           uint32_t{static_cast<uint8_t>(header[7])});
  }
  out.resize(end);
  if (start == out.size()) {
    out.clear();
    start = 0;
  }
}

}  // namespace

std::string NewInstanceId() {
  std::string id(16, '\0');
  size_t got = 0;
  while (got < id.size()) {
    const ssize_t n = getrandom(id.data() + got, id.size() - got, 0);
    if (n > 0) {
      got += n;
    } else if (errno != EINTR) {
      // No randomness: time and pid still tell one life from another.
      const uint64_t t = static_cast<uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      id = absl::StrCat(t, "-", getpid());
      break;
    }
  }
  return id;
}

Link::Link(std::string role, std::string agent_version)
    : role_(std::move(role)),
      agent_version_(std::move(agent_version)),
      instance_(NewInstanceId()) {}

void Link::Attach(UniqueFd fd) {
  fd_ = std::move(fd);
  // Output for the old transport means nothing on the new one.
  out_.clear();
  out_start_ = 0;
  Reset();
}

void Link::Reset() {
  up_ = false;
  DropUnwritten(out_, out_start_);
  // Everything not acknowledged goes again after the next Hello.
  written_ = 0;
  reader_ = FrameReader();
  reader_.Resync();
  if (fd_.valid()) SendHello(/*reply=*/true);
}

void Link::Detach() {
  fd_.reset();
  up_ = false;
  out_.clear();
  out_start_ = 0;
  written_ = 0;
}

void Link::SendHello(bool reply) {
  Frame frame;
  Hello& hello = *frame.mutable_hello();
  hello.set_version(kProtocolVersion);
  hello.set_role(role_);
  hello.set_instance(instance_);
  hello.set_peer_instance(peer_instance_);
  hello.set_received(received_);
  hello.set_reply(reply);
  hello.set_agent_version(agent_version_);
  Encode(frame);
}

void Link::Encode(Frame& frame) {
  frame.set_ack(received_);
  acked_sent_ = received_;
  out_ += EncodeFrame(frame);
}

void Link::Send(Frame frame) {
  frame.set_seq(next_seq_++);
  unacked_.push_back(std::move(frame));
  if (up_ && written_ + 1 == unacked_.size()) {
    Encode(unacked_.back());
    written_ = unacked_.size();
  }
}

void Link::SendOnce(Frame frame) {
  frame.set_seq(0);
  if (fd_.valid()) Encode(frame);
}

void Link::OnAck(uint64_t ack) {
  while (!unacked_.empty() && unacked_.front().seq() <= ack) {
    unacked_.pop_front();
    if (written_ > 0) --written_;
  }
}

void Link::OnHello(const Hello& hello, const Handler& handler) {
  const bool resumed = !peer_instance_.empty() &&
                       hello.instance() == peer_instance_ &&
                       hello.peer_instance() == instance_;
  if (up_ && resumed && !hello.reply()) {
    // The answer to our Hello, which crossed the peer's own: what the peer
    // lacked was sent again when its Hello came. Not a second meeting, and
    // not answered (two ends answering answers would never stop).
    OnAck(hello.received());
    return;
  }
  // A Hello while up: the peer reads on from here, so output not written
  // yet is stale (each Hello would otherwise queue another copy of every
  // unacked frame). Before that, out_ holds our own Hello, which it may
  // still need.
  const bool was_up = up_;
  if (was_up) DropUnwritten(out_, out_start_);
  if (resumed) {
    OnAck(hello.received());
  } else {
    // Someone else: what was queued for the old peer means nothing to it.
    peer_instance_ = hello.instance();
    received_ = 0;
    acked_sent_ = 0;
    next_seq_ = 1;
    unacked_.clear();
  }
  written_ = 0;
  up_ = true;
  // Asked for, or in place of one of ours just dropped unwritten.
  if (hello.reply() || was_up) SendHello(/*reply=*/false);
  // The new peer's handler runs first: it may queue frames for it.
  if (handler.peer) handler.peer(hello, resumed);
  for (; written_ < unacked_.size(); ++written_) Encode(unacked_[written_]);
}

absl::Status Link::OnReadable(const Handler& handler) {
  char buffer[65536];
  bool delivered = false;
  for (;;) {
    const ssize_t n = read(fd_.get(), buffer, sizeof(buffer));
    if (n == 0) return absl::UnavailableError("the channel's peer hung up");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return ErrnoStatus("reading the channel");
    }
    reader_.Feed(absl::string_view(buffer, n));
    for (;;) {
      absl::StatusOr<std::optional<Frame>> next = reader_.Next();
      if (!next.ok()) {
        if (handler.garbage) handler.garbage(next.status());
        Frame error;
        error.mutable_error()->set_code(Error::BAD_FRAME);
        error.mutable_error()->set_message(
            absl::StrCat(role_, ": ", next.status().message(),
                         "; skipping to the next Hello"));
        SendOnce(std::move(error));
        continue;
      }
      if (!next->has_value()) break;
      Frame& frame = **next;
      if (frame.has_hello()) {
        if (frame.hello().version() != kProtocolVersion) {
          Frame error;
          error.mutable_error()->set_code(Error::VERSION);
          error.mutable_error()->set_message(
              absl::StrCat(role_, " speaks channel protocol ", kProtocolVersion,
                           ", not ", frame.hello().version()));
          SendOnce(std::move(error));
          continue;
        }
        OnHello(frame.hello(), handler);
        continue;
      }
      if (!up_) continue;  // Nothing counts before the peer's Hello.
      OnAck(frame.ack());
      if (frame.seq() == 0) {
        // A bare ack, or a frame not worth keeping (an Error about
        // garbage: the peer is resynchronising, say Hello again).
        if (frame.has_error() && frame.error().session() == 0 &&
            frame.error().code() == Error::BAD_FRAME) {
          if (handler.garbage) {
            handler.garbage(absl::DataLossError(frame.error().message()));
          }
          Reset();
          break;
        }
        if (frame.body_case() != Frame::BODY_NOT_SET && handler.frame) {
          handler.frame(frame);
        }
        continue;
      }
      if (frame.seq() <= received_) continue;  // Sent again; had it.
      if (frame.seq() != received_ + 1) {
        // A gap: the transport lost bytes under us. Start again from the
        // last frame we have.
        if (handler.garbage) {
          handler.garbage(absl::DataLossError(absl::StrCat(
              "frame ", frame.seq(), " after ", received_, ": resuming")));
        }
        Reset();
        break;
      }
      received_ = frame.seq();
      delivered = true;
      if (handler.frame) handler.frame(frame);
    }
  }
  // Output still waiting was encoded before these frames came: it does not
  // carry their ack.
  if (delivered && received_ != acked_sent_) {
    Frame ack;  // A bare ack: seq 0, no body.
    Encode(ack);
  }
  return absl::OkStatus();
}

absl::Status Link::Flush() {
  while (out_start_ < out_.size()) {
    const ssize_t n =
        write(fd_.get(), out_.data() + out_start_, out_.size() - out_start_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return absl::OkStatus();
      return ErrnoStatus("writing the channel");
    }
    out_start_ += n;
  }
  out_.clear();
  out_start_ = 0;
  return absl::OkStatus();
}

}  // namespace fcvm::channel
