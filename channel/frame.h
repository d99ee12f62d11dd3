#ifndef FCVM_CHANNEL_FRAME_H_
#define FCVM_CHANNEL_FRAME_H_

// Frames on the control channel's byte stream: "FCV", the protocol
// version, the payload's length (32-bit big-endian), then a channel.Frame
// in protobuf's binary encoding. The reader is the one parser of bytes
// from the other side; it never trusts a length before checking it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "channel/channel.pb.h"

namespace fcvm::channel {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kHeaderBytes = 8;
// The largest payload either side sends or accepts.
inline constexpr size_t kMaxPayloadBytes = 256 * 1024;
// The most bytes of one stream in one Data frame.
inline constexpr size_t kMaxDataBytes = 64 * 1024;
// Each direction of each session may have this many data bytes in flight
// (sent, not yet credited back): what bounds either side's memory.
inline constexpr uint64_t kWindowBytes = 512 * 1024;
// The most sessions the agent runs at once.
inline constexpr size_t kMaxSessions = 64;

// The frame as its bytes on the wire.
std::string EncodeFrame(const Frame& frame);

// Splits a byte stream into frames.
class FrameReader {
 public:
  // Appends bytes read from the peer.
  void Feed(absl::string_view bytes);

  // The next whole frame, nullopt when more bytes are needed, or
  // DataLoss naming what is wrong (bad magic, an unknown version, a
  // length over kMaxPayloadBytes, a payload that does not parse). After an
  // error the reader is resynchronising: it skips bytes up to the next
  // header and then returns only Hello frames (the peer's new start)
  // until one arrives.
  [[nodiscard]] absl::StatusOr<std::optional<Frame>> Next();

  // Skip everything up to the next Hello (a transport that was reset may
  // deliver the tail of an old frame first).
  void Resync();

  bool resyncing() const { return resyncing_; }
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;
  bool resyncing_ = false;
};

}  // namespace fcvm::channel

#endif  // FCVM_CHANNEL_FRAME_H_
