#include "channel/frame.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fcvm::channel {
namespace {

constexpr char kMagic[] = "FCV";

bool IsHeaderAt(absl::string_view bytes) {
  return bytes.size() >= 4 && bytes.substr(0, 3) == kMagic &&
         static_cast<uint8_t>(bytes[3]) == kProtocolVersion;
}

}  // namespace

std::string EncodeFrame(const Frame& frame) {
  const std::string payload = frame.SerializeAsString();
  std::string out(kHeaderBytes, '\0');
  out[0] = 'F';
  out[1] = 'C';
  out[2] = 'V';
  out[3] = static_cast<char>(kProtocolVersion);
  const uint32_t n = payload.size();
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  out += payload;
  return out;
}

void FrameReader::Feed(absl::string_view bytes) {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

void FrameReader::Resync() { resyncing_ = true; }

absl::StatusOr<std::optional<Frame>> FrameReader::Next() {
  // Bad bytes found while resynchronising are skipped without a word: the
  // first error said it.
  const bool quiet = resyncing_;
  for (;;) {
    absl::string_view rest = absl::string_view(buffer_).substr(start_);
    if (resyncing_) {
      // Skip to the next header: "FCV" followed by our version.
      size_t at = rest.find(kMagic);
      while (at != absl::string_view::npos && rest.size() - at >= 4 &&
             !IsHeaderAt(rest.substr(at))) {
        at = rest.find(kMagic, at + 1);
      }
      if (at == absl::string_view::npos) {
        // Keep a possible partial magic at the end.
        const size_t keep = std::min<size_t>(rest.size(), 3);
        start_ += rest.size() - keep;
        return std::nullopt;
      }
      start_ += at;
      rest = rest.substr(at);
    }
    const size_t probe = std::min<size_t>(rest.size(), 3);
    if (rest.empty() || (rest.size() < 3 &&
                         rest == absl::string_view(kMagic).substr(0, probe))) {
      return std::nullopt;  // The start of a header, perhaps.
    }
    if (rest.substr(0, probe) != absl::string_view(kMagic).substr(0, probe)) {
      resyncing_ = true;
      start_ += 1;
      if (quiet) continue;
      return absl::DataLossError("bad frame: no FCV header");
    }
    if (rest.size() < kHeaderBytes) return std::nullopt;
    if (static_cast<uint8_t>(rest[3]) != kProtocolVersion) {
      resyncing_ = true;
      start_ += 3;
      if (quiet) continue;
      return absl::DataLossError(absl::StrCat(
          "bad frame: protocol version ", static_cast<uint8_t>(rest[3]),
          ", this end speaks ", kProtocolVersion));
    }
    const uint32_t length = (uint32_t{static_cast<uint8_t>(rest[4])} << 24) |
                            (uint32_t{static_cast<uint8_t>(rest[5])} << 16) |
                            (uint32_t{static_cast<uint8_t>(rest[6])} << 8) |
                            uint32_t{static_cast<uint8_t>(rest[7])};
    if (length > kMaxPayloadBytes) {
      resyncing_ = true;
      start_ += 3;
      if (quiet) continue;
      return absl::DataLossError(absl::StrCat("bad frame: ", length,
                                              " bytes, more than the ",
                                              kMaxPayloadBytes, " allowed"));
    }
    if (rest.size() < kHeaderBytes + length) return std::nullopt;
    Frame frame;
    const bool parsed =
        frame.ParseFromArray(rest.data() + kHeaderBytes, length);
    if (!parsed) {
      resyncing_ = true;
      start_ += 3;
      if (quiet) continue;
      return absl::DataLossError(
          absl::StrCat("bad frame: ", length, " bytes that are not a Frame"));
    }
    start_ += kHeaderBytes + length;
    if (resyncing_) {
      if (!frame.has_hello()) continue;  // The tail of an older stream.
      resyncing_ = false;
    }
    return frame;
  }
}

}  // namespace fcvm::channel
