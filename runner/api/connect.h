#ifndef FCVM_RUNNER_API_CONNECT_H_
#define FCVM_RUNNER_API_CONNECT_H_

// The Connect protocol, JSON codec, as the E2B SDKs speak it to the agent
// surface (../shared/notes/e2b-compat.md §3.1): unary calls are a JSON
// body; a server stream's request body and every message of its response
// are "envelopes": one flags byte, a 32-bit big-endian length, that many
// bytes of JSON. Flags: 0x00 a message, 0x02 the EndStreamResponse that
// must end every stream, 0x01 compressed (never sent by the SDKs; refused).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::runner::api {

inline constexpr uint8_t kEnvelopeMessage = 0x00;
inline constexpr uint8_t kEnvelopeCompressed = 0x01;
inline constexpr uint8_t kEnvelopeEndStream = 0x02;
inline constexpr size_t kEnvelopeHeaderBytes = 5;

// `payload` behind its 5-byte header.
std::string Envelope(uint8_t flags, absl::string_view payload);

struct ParsedEnvelope {
  uint8_t flags = 0;
  std::string payload;
};

// Splits a byte stream into envelopes as it arrives (a client reading a
// stream; the fuzz target). Any malformed envelope is an error and the
// reader is then unusable (Connect has no resynchronisation).
class EnvelopeReader {
 public:
  explicit EnvelopeReader(size_t max_payload_bytes)
      : max_payload_bytes_(max_payload_bytes) {}

  void Append(absl::string_view bytes) {
    buffer_.append(bytes.data(), bytes.size());
  }
  // The next whole envelope, or nullopt until more bytes come.
  // InvalidArgument for unknown flags or a payload over the limit.
  [[nodiscard]] absl::StatusOr<std::optional<ParsedEnvelope>> Next();
  // Bytes received and not yet returned as an envelope.
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  size_t max_payload_bytes_;
  std::string buffer_;
  size_t start_ = 0;
};

// The single message of a server-streaming call's request body: exactly
// one uncompressed message envelope, nothing before or after it. Errors
// (InvalidArgument) say what is wrong: "the request body is 3 bytes, an
// envelope's header alone is 5", "... declares 90 bytes, 12 follow",
// "compressed envelopes are not accepted", "4 bytes after the envelope".
[[nodiscard]] absl::StatusOr<std::string> ParseRequestEnvelope(
    absl::string_view body, size_t max_payload_bytes);

// Connect's name of a status code ("not_found"); "unknown" for OK.
absl::string_view ConnectCodeName(absl::StatusCode code);
// The code named `name`, or nullopt.
std::optional<absl::StatusCode> ConnectCodeFromName(absl::string_view name);
// The HTTP status of a unary error with this code (the Connect spec's
// table: not_found 404, invalid_argument 400, unauthenticated 401, ...).
int ConnectHttpStatus(absl::StatusCode code);

// {"code":"not_found","message":"..."} (a unary error's body).
std::string ConnectErrorJson(const absl::Status& status);
// The EndStreamResponse's JSON: {} for OK, else {"error":{...}}.
std::string EndStreamJson(const absl::Status& status);

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_CONNECT_H_
