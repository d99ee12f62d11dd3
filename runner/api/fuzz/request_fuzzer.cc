#include "runner/api/fuzz/request_fuzzer.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "runner/api/connect.h"
#include "runner/api/e2b/api.pb.h"
#include "runner/api/e2b/filesystem.pb.h"
#include "runner/api/e2b/process.pb.h"

namespace fcvm::runner::api {
namespace {

constexpr size_t kMaxPayload = 1 << 16;

// Every message the API parses from a client's JSON.
std::vector<std::unique_ptr<google::protobuf::Message>> RequestMessages() {
  std::vector<std::unique_ptr<google::protobuf::Message>> all;
  all.push_back(std::make_unique<process::StartRequest>());
  all.push_back(std::make_unique<process::ConnectRequest>());
  all.push_back(std::make_unique<process::SendInputRequest>());
  all.push_back(std::make_unique<process::SendSignalRequest>());
  all.push_back(std::make_unique<process::CloseStdinRequest>());
  all.push_back(std::make_unique<process::UpdateRequest>());
  all.push_back(std::make_unique<filesystem::StatRequest>());
  all.push_back(std::make_unique<filesystem::ListDirRequest>());
  all.push_back(std::make_unique<filesystem::MakeDirRequest>());
  all.push_back(std::make_unique<filesystem::MoveRequest>());
  all.push_back(std::make_unique<filesystem::RemoveRequest>());
  all.push_back(std::make_unique<filesystem::WatchDirRequest>());
  all.push_back(std::make_unique<e2b::NewSandbox>());
  all.push_back(std::make_unique<e2b::SetTimeout>());
  all.push_back(std::make_unique<e2b::ConnectSandbox>());
  return all;
}

std::string BrokenJsonPromise(absl::string_view json) {
  using google::protobuf::util::JsonStringToMessage;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  for (const auto& message : RequestMessages()) {
    if (!JsonStringToMessage(std::string(json), message.get(), options).ok()) {
      continue;
    }
    std::string printed;
    if (!google::protobuf::util::MessageToJsonString(*message, &printed).ok()) {
      return absl::StrCat(message->GetTypeName(),
                          " parsed but does not print back to JSON");
    }
    std::unique_ptr<google::protobuf::Message> again(message->New());
    if (!JsonStringToMessage(printed, again.get()).ok()) {
      return absl::StrCat(message->GetTypeName(), " printed ", printed,
                          ", which does not parse");
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(*message, *again)) {
      return absl::StrCat(message->GetTypeName(), " changed through ", printed);
    }
  }
  return "";
}

// The envelopes of `input` read in chunks of sizes drawn from `sizes`
// (cycled; 0 means the rest), described as DescribeEnvelopes' stream part.
std::string ReadStream(absl::string_view input, absl::string_view sizes,
                       std::string* broken) {
  EnvelopeReader reader(kMaxPayload);
  std::vector<std::string> parts;
  size_t offset = 0;
  size_t consumed = 0;
  size_t draw = 0;
  bool failed = false;
  while (!failed) {
    size_t chunk = input.size() - offset;
    if (!sizes.empty()) {
      const size_t s = static_cast<uint8_t>(sizes[draw++ % sizes.size()]);
      if (s != 0) chunk = std::min(chunk, s);
    }
    reader.Append(input.substr(offset, chunk));
    offset += chunk;
    while (true) {
      auto next = reader.Next();
      if (!next.ok()) {
        parts.push_back(absl::StrCat("error: ", next.status().message()));
        failed = true;
        break;
      }
      if (!next->has_value()) break;
      const ParsedEnvelope& e = **next;
      const std::string encoded = Envelope(e.flags, e.payload);
      if (input.substr(consumed, encoded.size()) != encoded) {
        *broken = "an envelope does not re-encode to the bytes it consumed";
      }
      consumed += encoded.size();
      parts.push_back(absl::StrCat(
          (e.flags & kEnvelopeEndStream) ? "end " : "msg ", e.payload.size()));
    }
    if (reader.buffered() > kEnvelopeHeaderBytes + kMaxPayload) {
      *broken = "the reader buffers more than one envelope";
    }
    if (offset == input.size()) break;
  }
  if (!failed && reader.buffered() > 0) parts.push_back("partial");
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::string DescribeEnvelopes(absl::string_view input) {
  std::string broken;
  auto request = ParseRequestEnvelope(input, kMaxPayload);
  return absl::StrCat(request.ok() ? absl::StrCat("request: ", request->size())
                                   : absl::StrCat("request error: ",
                                                  request.status().message()),
                      "; stream: ", ReadStream(input, "", &broken));
}

std::string BrokenRequestPromise(absl::string_view input) {
  auto request = ParseRequestEnvelope(input, kMaxPayload);
  if (request.ok()) {
    if (Envelope(kEnvelopeMessage, *request) != input) {
      return "a request envelope that was accepted does not re-encode";
    }
  } else if (request.status().code() != absl::StatusCode::kInvalidArgument) {
    return absl::StrCat("a refusal that is not InvalidArgument: ",
                        request.status().ToString());
  }
  std::string broken;
  const std::string at_once = ReadStream(input, "", &broken);
  if (!broken.empty()) return broken;
  // Chunk sizes from the input's first bytes.
  const std::string chunked = ReadStream(
      input, input.substr(0, std::min<size_t>(8, input.size())), &broken);
  if (!broken.empty()) return broken;
  if (chunked != at_once) {
    return absl::StrCat("chunks changed the stream: ", at_once, " vs ",
                        chunked);
  }
  std::string json = BrokenJsonPromise(input);
  if (!json.empty()) return json;
  if (request.ok()) return BrokenJsonPromise(*request);
  return "";
}

}  // namespace fcvm::runner::api

#ifdef FCVM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string broken = fcvm::runner::api::BrokenRequestPromise(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!broken.empty()) {
    std::fprintf(stderr, "broken promise: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
#endif
