#ifndef FCVM_CHANNEL_LINK_H_
#define FCVM_CHANNEL_LINK_H_

// One end of the hub <-> agent link: frames over a transport that may be
// reset under it (vsock connections are reset by a snapshot restore; a
// virtio-serial port closes when its host side goes away). Every frame but
// Hello and bare acks carries a sequence number and is kept until the peer
// acknowledges it; when the transport comes back and both Hellos show the
// same two ends, each sends again what the other has not acknowledged, so
// nothing acknowledged is ever lost and nothing is delivered twice. A
// peer that is someone else (a restored clone's agent meets its own hub;
// a restarted agent) starts afresh: the owner drops its sessions.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "base/unique_fd.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"

namespace fcvm::channel {

// A random 16-byte id for one end's life.
std::string NewInstanceId();

class Link {
 public:
  struct Handler {
    // A frame from the peer, in order, each exactly once.
    std::function<void(Frame& frame)> frame;
    // The peer's Hello arrived: `resumed` when it is the peer of before
    // (unacknowledged frames were sent again), false for a new peer (every
    // frame queued for the old one was dropped).
    std::function<void(const Hello& hello, bool resumed)> peer;
    // Bytes that were not a frame; the link resynchronises by itself.
    std::function<void(const absl::Status& error)> garbage;
  };

  Link(std::string role, std::string agent_version = "");

  const std::string& instance() const { return instance_; }
  // The transport: a connected stream, or the virtio-serial port. The
  // link sends its Hello (asking for the peer's) and skips whatever
  // arrives before the peer's Hello.
  void Attach(UniqueFd fd);
  // The peer went away but `fd` stays (a virtio-serial port whose host
  // closed it): output not yet written is dropped (it is sent again after
  // the next Hello) and input is skipped up to the next Hello.
  void Reset();
  // Closes the transport; frames not acknowledged are kept.
  void Detach();

  int fd() const { return fd_.get(); }
  bool attached() const { return fd_.valid(); }
  // Hellos exchanged since the last Attach/Reset.
  bool up() const { return up_; }
  // Whether output waits for the fd to be writable.
  bool wants_write() const { return out_.size() > out_start_; }
  // Frames sent and not acknowledged (and their bytes).
  size_t unacked() const { return unacked_.size(); }

  // Reads what the fd has and hands frames to `handler`. Non-OK when the
  // transport ended (end of file, an error): the caller Detach()es or
  // Reset()s.
  [[nodiscard]] absl::Status OnReadable(const Handler& handler);
  // Writes queued output as far as the fd takes it (non-blocking fd).
  [[nodiscard]] absl::Status Flush();

  // Queues a frame; it is sent now if the link is up, else after the
  // next Hello, and kept until acknowledged.
  void Send(Frame frame);
  // A frame not worth keeping across a reset (an Error about garbage).
  void SendOnce(Frame frame);

 private:
  void SendHello(bool reply);
  void Encode(Frame& frame);
  void OnHello(const Hello& hello, const Handler& handler);
  void OnAck(uint64_t ack);

  const std::string role_;
  const std::string agent_version_;
  const std::string instance_;
  UniqueFd fd_;
  FrameReader reader_;
  bool up_ = false;

  std::string peer_instance_;  // Empty: none yet.
  uint64_t received_ = 0;      // The peer's last sequence number delivered.
  uint64_t acked_sent_ = 0;    // The last `received_` the peer was told.
  uint64_t next_seq_ = 1;
  std::deque<Frame> unacked_;  // In sequence order.
  size_t written_ = 0;         // unacked_[0, written_) are in out_ or sent.

  std::string out_;
  size_t out_start_ = 0;
};

}  // namespace fcvm::channel

#endif  // FCVM_CHANNEL_LINK_H_
