#include "agent/testing/mmds_store.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace fcvm::agent::testing {
namespace {

using ::google::protobuf::Value;

constexpr absl::string_view kTokenPath = "/latest/api/token";
constexpr absl::string_view kJson = "application/json";
constexpr absl::string_view kText = "text/plain";

// Firecracker's texts (src/vmm/src/mmds/mod.rs, data_store.rs and the API
// server's fault messages).
constexpr absl::string_view kInvalidUri = "Invalid URI.";
constexpr absl::string_view kMethodNotAllowed = "Not allowed HTTP method.";
constexpr absl::string_view kNoToken =
    "No MMDS token provided. Use `X-metadata-token` or "
    "`X-aws-ec2-metadata-token` header to specify the session token.";
constexpr absl::string_view kInvalidToken = "MMDS token not valid.";
constexpr absl::string_view kNoTtl =
    "Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
    "or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the "
    "token's lifetime.";
constexpr absl::string_view kUnsupportedType =
    "Cannot retrieve value. The value has an unsupported type.";
constexpr absl::string_view kTooLarge =
    "MMDS limit exceeded error: The MMDS patch request doesn't fit.";
constexpr absl::string_view kNotInitialized =
    "MMDS error: The MMDS data store is not initialized.";

MmdsAnswer Text(int status, absl::string_view body) {
  return {status, std::string(kText), std::string(body), {}};
}

// The last header named any of `names` (lower case), compared without
// regard to case; nullptr when there is none.
const std::pair<std::string, std::string>* FindHeader(
    const MmdsHeaders& headers,
    std::initializer_list<absl::string_view> names) {
  const std::pair<std::string, std::string>* found = nullptr;
  for (const auto& header : headers) {
    const absl::string_view name = absl::StripAsciiWhitespace(header.first);
    for (absl::string_view wanted : names) {
      if (absl::EqualsIgnoreCase(name, wanted)) found = &header;
    }
  }
  return found;
}

absl::string_view HeaderName(const std::pair<std::string, std::string>& h) {
  return absl::StripAsciiWhitespace(h.first);
}

absl::string_view HeaderValue(const std::pair<std::string, std::string>& h) {
  return absl::StripAsciiWhitespace(h.second);
}

// Firecracker's HTTP library takes Accept only when it is exactly one of
// its two media types; any other value (*/*, a list, parameters) leaves the
// default, text/plain.
bool WantsJson(const MmdsHeaders& headers) {
  bool json = false;
  for (const auto& header : headers) {
    if (!absl::EqualsIgnoreCase(HeaderName(header), "accept")) continue;
    if (HeaderValue(header) == kJson) json = true;
    if (HeaderValue(header) == kText) json = false;
  }
  return json;
}

// The absolute path of a request target, as Firecracker's HTTP library
// reads it: "http://host/p" -> "/p", "/p" -> "/p", anything else -> "".
// The query, if any, stays part of the path.
absl::string_view AbsolutePath(absl::string_view target) {
  if (absl::ConsumePrefix(&target, "http://")) {
    const size_t slash = target.find('/');
    return slash == absl::string_view::npos ? absl::string_view()
                                            : target.substr(slash);
  }
  return absl::StartsWith(target, "/") ? target : absl::string_view();
}

// Runs of '/' become one: the document is addressed by a strict JSON
// pointer.
std::string Sanitize(absl::string_view uri) {
  std::string path;
  for (char c : uri) {
    if (c == '/' && !path.empty() && path.back() == '/') continue;
    path.push_back(c);
  }
  return path;
}

// An array index as RFC 6901 spells it: digits, no sign, no leading zero.
std::optional<size_t> ArrayIndex(absl::string_view token) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) {
    return std::nullopt;
  }
  size_t index = 0;
  for (char c : token) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
    index = index * 10 + static_cast<size_t>(c - '0');
    if (index > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  }
  return index;
}

// The value at JSON pointer `pointer` (RFC 6901: "" is the whole
// document, "~1" is '/', "~0" is '~'); nullptr where there is none.
const Value* Lookup(const Value& root, absl::string_view pointer) {
  if (pointer.empty()) return &root;
  if (!absl::ConsumePrefix(&pointer, "/")) return nullptr;
  const Value* at = &root;
  for (absl::string_view raw : absl::StrSplit(pointer, '/')) {
    // "~01" is "~1", not "/": "~1" first, as the RFC orders it.
    const std::string token = absl::StrReplaceAll(
        absl::StrReplaceAll(raw, {{"~1", "/"}}), {{"~0", "~"}});
    if (at->has_struct_value()) {
      const auto& fields = at->struct_value().fields();
      auto it = fields.find(token);
      if (it == fields.end()) return nullptr;
      at = &it->second;
    } else if (at->has_list_value()) {
      std::optional<size_t> index = ArrayIndex(token);
      if (!index ||
          *index >= static_cast<size_t>(at->list_value().values_size())) {
        return nullptr;
      }
      at = &at->list_value().values(static_cast<int>(*index));
    } else {
      return nullptr;
    }
  }
  return at;
}

// Resolves the well-known types for the JSON printer; it only reads the
// generated pool, so one serves every thread.
google::protobuf::util::TypeResolver* Resolver() {
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com",
          google::protobuf::DescriptorPool::generated_pool());
  return resolver;
}

// Compact JSON with object keys sorted, as Firecracker prints its
// document. Deterministic serialization orders map entries (a Struct's
// fields); the JSON printer keeps that order.
std::string PrintJson(const Value& value) {
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    value.SerializeToCodedStream(&coded);
  }
  std::string json;
  // A Value always has a JSON form: nothing to fail on.
  (void)google::protobuf::util::BinaryToJsonString(
      Resolver(), "type.googleapis.com/google.protobuf.Value", binary, &json);
  return json;
}

[[nodiscard]] absl::Status ParseJson(absl::string_view json, Value* value) {
  const auto status =
      google::protobuf::util::JsonStringToMessage(std::string(json), value);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "An error occurred when deserializing the json body of a request: ",
        std::string(status.message()), "."));
  }
  return absl::OkStatus();
}

// RFC 7396, as Firecracker applies it.
void MergePatch(Value* target, const Value& patch) {
  if (!patch.has_struct_value()) {
    *target = patch;
    return;
  }
  if (!target->has_struct_value()) target->mutable_struct_value()->Clear();
  auto& fields = *target->mutable_struct_value()->mutable_fields();
  for (const auto& [key, value] : patch.struct_value().fields()) {
    if (value.kind_case() == Value::kNullValue) {
      fields.erase(key);
    } else {
      // A new key starts with no value, so it takes the patch's.
      MergePatch(&fields[key], value);
    }
  }
}

// IMDS's text format: an object's keys one per line (sorted; a sub-object
// with a trailing '/'), a string as itself. Nothing else has one.
std::optional<std::string> Imds(const Value& value) {
  if (value.has_struct_value()) {
    std::vector<std::string> keys;
    for (const auto& [key, child] : value.struct_value().fields()) {
      keys.push_back(child.has_struct_value() ? absl::StrCat(key, "/") : key);
    }
    std::sort(keys.begin(), keys.end());
    return absl::StrJoin(keys, "\n");
  }
  if (value.kind_case() == Value::kStringValue) return value.string_value();
  return std::nullopt;
}

// A u32 as Rust's parser takes it: an optional '+', then decimal digits.
std::optional<uint32_t> ParseU32(absl::string_view text) {
  absl::ConsumePrefix(&text, "+");
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

// 36 bytes, base64: the length of Firecracker's tokens (nonce, sealed
// expiry, tag). The serial keeps every token distinct; the rest makes it
// unguessable, as a token should be.
std::string NewToken(uint64_t serial, std::mt19937_64& random) {
  std::string raw(36, '\0');
  for (int i = 0; i < 8; ++i) {
    raw[i] = static_cast<char>(serial >> (8 * i));
  }
  for (size_t i = 8; i < raw.size(); ++i) {
    raw[i] = static_cast<char>(random());
  }
  std::string token;
  absl::Base64Escape(raw, &token);
  return token;
}

}  // namespace

MmdsStore::MmdsStore(Clock clock, size_t size_limit)
    : clock_(std::move(clock)),
      size_limit_(size_limit),
      random_(std::random_device{}()) {
  document_.set_null_value(google::protobuf::NULL_VALUE);
}

[[nodiscard]] absl::Status MmdsStore::Put(absl::string_view json) {
  Value document;
  RETURN_IF_ERROR(ParseJson(json, &document));
  absl::MutexLock lock(&mu_);
  return Replace(std::move(document));
}

[[nodiscard]] absl::Status MmdsStore::Patch(absl::string_view json) {
  Value patch;
  RETURN_IF_ERROR(ParseJson(json, &patch));
  absl::MutexLock lock(&mu_);
  if (!initialized_) return absl::FailedPreconditionError(kNotInitialized);
  Value patched = document_;
  MergePatch(&patched, patch);
  return Replace(std::move(patched));
}

[[nodiscard]] absl::Status MmdsStore::Replace(Value document) {
  if (PrintJson(document).size() > size_limit_) {
    return absl::ResourceExhaustedError(kTooLarge);
  }
  document_ = std::move(document);
  initialized_ = true;
  return absl::OkStatus();
}

std::string MmdsStore::Get() const {
  absl::MutexLock lock(&mu_);
  if (document_.kind_case() == Value::kNullValue) return "{}";
  return PrintJson(document_);
}

MmdsAnswer MmdsStore::Answer(absl::string_view method, absl::string_view path,
                             const MmdsHeaders& headers) {
  const absl::string_view uri = AbsolutePath(path);
  if (uri.empty()) return Text(400, kInvalidUri);
  absl::MutexLock lock(&mu_);
  if (method == "GET") return AnswerGet(uri, headers);
  if (method == "PUT") return AnswerPut(uri, headers);
  MmdsAnswer answer = Text(405, kMethodNotAllowed);
  answer.headers = {{"Allow", "GET, PUT"}};
  return answer;
}

MmdsAnswer MmdsStore::AnswerGet(absl::string_view uri,
                                const MmdsHeaders& headers) {
  // V2: the token first, whatever the path.
  const auto* token =
      FindHeader(headers, {"x-metadata-token", "x-aws-ec2-metadata-token"});
  if (token == nullptr) return Text(401, kNoToken);
  if (!IsLiveToken(HeaderValue(*token))) return Text(401, kInvalidToken);

  std::string pointer = Sanitize(uri);
  // A trailing '/' names the same value ("/fcvm/" is "/fcvm").
  if (absl::EndsWith(pointer, "/")) pointer.pop_back();
  const Value* value = Lookup(document_, pointer);
  if (value == nullptr) {
    return Text(404, absl::StrCat("Resource not found: ", uri, "."));
  }
  if (WantsJson(headers)) {
    return {200, std::string(kJson), PrintJson(*value), {}};
  }
  std::optional<std::string> text = Imds(*value);
  if (!text) return Text(501, kUnsupportedType);
  return {200, std::string(kText), std::move(*text), {}};
}

MmdsAnswer MmdsStore::AnswerPut(absl::string_view uri,
                                const MmdsHeaders& headers) {
  // A token must come from the guest itself, never through a proxy in it.
  if (const auto* forwarded = FindHeader(headers, {"x-forwarded-for"})) {
    return Text(400, absl::StrCat("Invalid header. Reason: Unsupported header "
                                  "name. Key: ",
                                  HeaderName(*forwarded)));
  }
  if (Sanitize(uri) != kTokenPath) {
    return Text(404, absl::StrCat("Resource not found: ", uri, "."));
  }
  const auto* ttl_header = FindHeader(
      headers,
      {"x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds"});
  if (ttl_header == nullptr) return Text(400, kNoTtl);
  std::optional<uint32_t> ttl = ParseU32(HeaderValue(*ttl_header));
  if (!ttl) {
    return Text(400, absl::StrCat("Invalid header. Reason: Invalid value. Key:",
                                  HeaderName(*ttl_header),
                                  "; Value:", HeaderValue(*ttl_header)));
  }
  if (*ttl < kMinTokenTtlSeconds || *ttl > kMaxTokenTtlSeconds) {
    return Text(
        400,
        absl::StrCat("Invalid time to live value provided for token: ", *ttl,
                     ". Please provide a value between ", kMinTokenTtlSeconds,
                     " and ", kMaxTokenTtlSeconds, "."));
  }
  std::string token = NewToken(++tokens_issued_, random_);
  tokens_[token] = clock_() + absl::Seconds(*ttl);
  MmdsAnswer answer = Text(200, token);
  answer.headers = {{std::string(HeaderName(*ttl_header)), absl::StrCat(*ttl)}};
  return answer;
}

bool MmdsStore::IsLiveToken(absl::string_view token) const {
  auto it = tokens_.find(std::string(token));
  // Firecracker: valid while the expiry is still ahead.
  return it != tokens_.end() && it->second > clock_();
}

void MmdsStore::ExpireTokens() {
  absl::MutexLock lock(&mu_);
  tokens_.clear();
}

}  // namespace fcvm::agent::testing
