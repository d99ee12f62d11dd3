#include "runner/api/connect.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "runner/api/connect.pb.h"

namespace fcvm::runner::api {
namespace {

struct CodeInfo {
  absl::StatusCode code;
  absl::string_view name;
  int http;
};

// connectrpc.com/docs/protocol, "Error Codes".
constexpr std::array<CodeInfo, 16> kCodes = {{
    {absl::StatusCode::kCancelled, "canceled", 499},
    {absl::StatusCode::kUnknown, "unknown", 500},
    {absl::StatusCode::kInvalidArgument, "invalid_argument", 400},
    {absl::StatusCode::kDeadlineExceeded, "deadline_exceeded", 504},
    {absl::StatusCode::kNotFound, "not_found", 404},
    {absl::StatusCode::kAlreadyExists, "already_exists", 409},
    {absl::StatusCode::kPermissionDenied, "permission_denied", 403},
    {absl::StatusCode::kResourceExhausted, "resource_exhausted", 429},
    {absl::StatusCode::kFailedPrecondition, "failed_precondition", 400},
    {absl::StatusCode::kAborted, "aborted", 409},
    {absl::StatusCode::kOutOfRange, "out_of_range", 400},
    {absl::StatusCode::kUnimplemented, "unimplemented", 501},
    {absl::StatusCode::kInternal, "internal", 500},
    {absl::StatusCode::kUnavailable, "unavailable", 503},
    {absl::StatusCode::kDataLoss, "data_loss", 500},
    {absl::StatusCode::kUnauthenticated, "unauthenticated", 401},
}};

const CodeInfo& InfoOf(absl::StatusCode code) {
  for (const CodeInfo& info : kCodes) {
    if (info.code == code) return info;
  }
  return kCodes[1];  // unknown
}

uint32_t ReadLength(absl::string_view header) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(header[1])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(header[2])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(header[3])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(header[4]));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  // Our own small messages always serialize.
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  return json;
}

connect::Error ToErrorMessage(const absl::Status& status) {
  connect::Error error;
  error.set_code(std::string(ConnectCodeName(status.code())));
  error.set_message(std::string(status.message()));
  return error;
}

}  // namespace

std::string Envelope(uint8_t flags, absl::string_view payload) {
  std::string out;
  out.reserve(kEnvelopeHeaderBytes + payload.size());
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<std::optional<ParsedEnvelope>> EnvelopeReader::Next() {
  const absl::string_view rest = absl::string_view(buffer_).substr(start_);
  if (rest.size() < kEnvelopeHeaderBytes) return std::nullopt;
  const uint8_t flags = static_cast<uint8_t>(rest[0]);
  if ((flags & ~(kEnvelopeCompressed | kEnvelopeEndStream)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope flags 0x", absl::Hex(flags),
                     " are not Connect's (0x00 message, 0x02 end)"));
  }
  const uint32_t length = ReadLength(rest);
  if (length > max_payload_bytes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("an envelope of ", length, " bytes is over the limit of ",
                     max_payload_bytes_));
  }
  if (rest.size() < kEnvelopeHeaderBytes + length) return std::nullopt;
  ParsedEnvelope envelope;
  envelope.flags = flags;
  envelope.payload = std::string(rest.substr(kEnvelopeHeaderBytes, length));
  start_ += kEnvelopeHeaderBytes + length;
  if (start_ > (64 << 10) && start_ * 2 > buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  return envelope;
}

absl::StatusOr<std::string> ParseRequestEnvelope(absl::string_view body,
                                                 size_t max_payload_bytes) {
  if (body.size() < kEnvelopeHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request body is ", body.size(),
        " bytes; a Connect envelope's header alone is ", kEnvelopeHeaderBytes));
  }
  const uint8_t flags = static_cast<uint8_t>(body[0]);
  if (flags == kEnvelopeCompressed) {
    return absl::InvalidArgumentError(
        "compressed envelopes are not accepted (send Connect-Content-"
        "Encoding identity)");
  }
  if (flags != kEnvelopeMessage) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request envelope's flags are 0x", absl::Hex(flags),
        "; a request is one message envelope (flags 0x00)",
        body[0] == '{' ? " and this looks like bare JSON: a streaming call "
                         "sends its message in an envelope"
                       : ""));
  }
  const uint32_t length = ReadLength(body);
  if (length > max_payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request envelope declares ", length,
                     " bytes, over the limit of ", max_payload_bytes));
  }
  const size_t follow = body.size() - kEnvelopeHeaderBytes;
  if (follow < length) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request envelope declares ", length, " bytes but ",
                     follow, " follow"));
  }
  if (follow > length) {
    return absl::InvalidArgumentError(
        absl::StrCat(follow - length,
                     " bytes after the request envelope; a server-streaming "
                     "call takes exactly one message"));
  }
  return std::string(body.substr(kEnvelopeHeaderBytes));
}

absl::string_view ConnectCodeName(absl::StatusCode code) {
  return InfoOf(code).name;
}

std::optional<absl::StatusCode> ConnectCodeFromName(absl::string_view name) {
  for (const CodeInfo& info : kCodes) {
    if (info.name == name) return info.code;
  }
  return std::nullopt;
}

int ConnectHttpStatus(absl::StatusCode code) { return InfoOf(code).http; }

std::string ConnectErrorJson(const absl::Status& status) {
  return ToJson(ToErrorMessage(status));
}

std::string EndStreamJson(const absl::Status& status) {
  connect::EndStream end;
  if (!status.ok()) *end.mutable_error() = ToErrorMessage(status);
  return ToJson(end);
}

}  // namespace fcvm::runner::api
