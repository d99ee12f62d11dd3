#include "uffd/handshake.h"

#include <algorithm>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "uffd/handshake.pb.h"

namespace fcvm::uffd {
namespace {

bool KnownPageSize(uint64_t size) {
  return size == 4096 || size == 16384 || size == 65536 || size == (2 << 20);
}

// Unknown field names are the peer's bytes: kept printable and short for
// the log, and few.
constexpr size_t kMaxUnknownFields = 16;
constexpr size_t kMaxFieldNameBytes = 64;

[[nodiscard]] absl::Status Invalid(size_t index, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("handshake region ", index, ": ", why));
}

// The JSON mapping also takes "4096", 4096.0, 4.096e3 and null for an
// integer field, and reads 9007199254740993.0 as a double (another number).
// Firecracker writes plain integers; anything else in a field we know is
// refused. This walks the text of the array (which the JSON mapping has
// accepted, with its leniencies: 'single-quoted' strings, bare keys): for
// each region object, each member whose name is a known field must have
// an integer literal as its value. It never reads past the end, and every
// step moves on, whatever the text.
class LiteralChecker {
 public:
  explicit LiteralChecker(absl::string_view json) : s_(json) {}

  // The first known field written otherwise, or OK. `known_seen[i]` gets
  // the known field names of region i as written (unescaped names only).
  [[nodiscard]] absl::Status Check(
      std::vector<std::set<std::string>>& known_seen) {
    SkipSpace();
    if (!Take('[')) return absl::OkStatus();  // Refused elsewhere.
    for (size_t index = 0;; ++index) {
      SkipSpace();
      if (Take(']') || Done()) return absl::OkStatus();
      const size_t element_start = at_;
      known_seen.emplace_back();
      if (Take('{')) {
        for (;;) {
          SkipSpace();
          if (Take('}') || Done()) break;
          const size_t member_start = at_;
          const std::string key(Key());
          SkipSpace();
          Take(':');
          SkipSpace();
          const size_t value_start = at_;
          SkipValue();
          const absl::string_view value =
              s_.substr(value_start, at_ - value_start);
          if (Region::descriptor()->FindFieldByName(key) != nullptr) {
            known_seen.back().insert(key);
            if (!IntegerLiteral(value)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("handshake region ", index, ": ", key,
                               " must be a plain non-negative integer, not ",
                               absl::CHexEscape(value.substr(0, 40))));
            }
          }
          SkipSpace();
          Take(',');
          if (at_ == member_start) ++at_;  // Never stuck.
        }
      } else {
        SkipValue();
      }
      SkipSpace();
      Take(',');
      if (at_ == element_start) ++at_;  // Never stuck.
    }
  }

 private:
  static bool IntegerLiteral(absl::string_view v) {
    if (v.empty() || v.size() > 20) return false;
    if (v.size() > 1 && v[0] == '0') return false;
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return c >= '0' && c <= '9'; });
  }
  static bool Quote(char c) { return c == '"' || c == '\''; }
  bool Done() const { return at_ >= s_.size(); }
  char Peek() const { return Done() ? '\0' : s_[at_]; }
  bool Take(char c) {
    if (Done() || s_[at_] != c) return false;
    ++at_;
    return true;
  }
  void SkipSpace() {
    while (!Done() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\r' ||
                       s_[at_] == '\n')) {
      ++at_;
    }
  }
  // At a quote: the raw text up to the matching one, `at_` past it.
  absl::string_view QuotedBody() {
    const char quote = s_[at_++];
    const size_t start = at_;
    while (!Done() && s_[at_] != quote) {
      at_ = std::min(s_.size(), at_ + (s_[at_] == '\\' ? 2 : 1));
    }
    const absl::string_view body = s_.substr(start, at_ - start);
    if (!Done()) ++at_;
    return body;
  }
  // A member's name: quoted, or bare (the JSON mapping takes both).
  absl::string_view Key() {
    if (Quote(Peek())) return QuotedBody();
    const size_t start = at_;
    while (!Done() && s_[at_] != ':' && s_[at_] != ' ' && s_[at_] != '\t' &&
           s_[at_] != '\r' && s_[at_] != '\n' && s_[at_] != '}' &&
           s_[at_] != ',') {
      ++at_;
    }
    return s_.substr(start, at_ - start);
  }
  // Any value: a string, a container (brackets counted outside strings),
  // or a bare token (number, true, false, null).
  void SkipValue() {
    if (Quote(Peek())) {
      QuotedBody();
      return;
    }
    if (Peek() == '[' || Peek() == '{') {
      int depth = 0;
      while (!Done()) {
        const char c = s_[at_];
        if (Quote(c)) {
          QuotedBody();
          continue;
        }
        ++at_;
        if (c == '[' || c == '{') ++depth;
        if ((c == ']' || c == '}') && --depth == 0) return;
      }
      return;
    }
    while (!Done() && absl::string_view(",]} \t\r\n").find(s_[at_]) ==
                          absl::string_view::npos) {
      ++at_;
    }
  }

  absl::string_view s_;
  size_t at_ = 0;
};

[[nodiscard]] absl::StatusOr<MemoryRegion> Check(const Region& r, size_t index,
                                                 uint64_t file_size) {
  MemoryRegion region;
  region.base = r.base_host_virt_addr();
  region.size = r.size();
  region.offset = r.offset();
  if (r.has_page_size() && r.has_page_size_kib() &&
      r.page_size() != r.page_size_kib()) {
    return Invalid(
        index, absl::StrCat("page_size ", r.page_size(), " and page_size_kib ",
                            r.page_size_kib(), " disagree"));
  }
  region.page_size = r.has_page_size()       ? r.page_size()
                     : r.has_page_size_kib() ? r.page_size_kib()
                                             : 4096;
  if (!KnownPageSize(region.page_size)) {
    return Invalid(index, absl::StrCat("page size ", region.page_size,
                                       " bytes is none of 4096, 16384, "
                                       "65536, 2097152"));
  }
  const uint64_t page = region.page_size;
  if (region.size == 0) return Invalid(index, "size 0");
  if (region.size % page != 0 || region.base % page != 0 ||
      region.offset % page != 0) {
    return Invalid(
        index, absl::StrCat("base_host_virt_addr ", region.base, ", size ",
                            region.size, " and offset ", region.offset,
                            " must all be multiples of the page size ", page));
  }
  if (region.base + region.size < region.base) {
    return Invalid(index, "base_host_virt_addr + size overflows");
  }
  if (region.offset > file_size || region.size > file_size - region.offset) {
    return Invalid(
        index, absl::StrCat("offset ", region.offset, " + size ", region.size,
                            " is past the end of the memory file (", file_size,
                            " bytes)"));
  }
  return region;
}

}  // namespace

[[nodiscard]] absl::StatusOr<HandshakeBody> ParseHandshakeBody(
    absl::string_view json, uint64_t file_size) {
  if (json.empty()) return absl::InvalidArgumentError("empty handshake");
  if (json.size() > kMaxHandshakeBytes) {
    return absl::InvalidArgumentError(absl::StrCat("handshake of ", json.size(),
                                                   " bytes (at most ",
                                                   kMaxHandshakeBytes, ")"));
  }
  const size_t first = json.find_first_not_of(" \t\r\n");
  if (first == absl::string_view::npos || json[first] != '[') {
    return absl::InvalidArgumentError(absl::StrCat(
        "handshake is not a JSON array of regions: it starts with '",
        absl::CHexEscape(json.substr(
            first == absl::string_view::npos ? json.size() : first, 1)),
        "'"));
  }
  // First: exactly one JSON array. Only then is wrapping it as the value of
  // "regions" the same document, whatever the peer wrote.
  google::protobuf::ListValue array;
  if (auto status = google::protobuf::util::JsonStringToMessage(
          std::string(json), &array);
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "handshake is not valid JSON: ", std::string(status.message())));
  }
  if (array.values_size() == 0) {
    return absl::InvalidArgumentError("handshake has no regions");
  }
  if (static_cast<size_t>(array.values_size()) > kMaxRegions) {
    return absl::InvalidArgumentError(
        absl::StrCat("handshake has ", array.values_size(),
                     " regions (at most ", kMaxRegions, ")"));
  }
  // The fields this server does not know, by their exact names (each
  // json_name is the field's name: no other spelling is known).
  const google::protobuf::Descriptor* region_type = Region::descriptor();
  std::set<std::string> unknown;
  for (const google::protobuf::Value& element : array.values()) {
    if (!element.has_struct_value()) continue;  // Refused below.
    for (const auto& [name, value] : element.struct_value().fields()) {
      if (region_type->FindFieldByName(name) == nullptr &&
          unknown.size() < kMaxUnknownFields) {
        unknown.insert(absl::CHexEscape(
            absl::string_view(name).substr(0, kMaxFieldNameBytes)));
      }
    }
  }
  // Then the typed parse: exact 64-bit integers and the right types for
  // every known field; unknown ones skipped, as Firecracker's serde does.
  Handshake handshake;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (auto status = google::protobuf::util::JsonStringToMessage(
          absl::StrCat("{\"regions\":", json, "}"), &handshake, options);
      !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("handshake regions: ", std::string(status.message())));
  }
  // The JSON mapping drops null elements: every element must have become a
  // region ("[null]" is not one region of nothing).
  if (handshake.regions_size() != array.values_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "handshake regions: ", array.values_size() - handshake.regions_size(),
        " of the ", array.values_size(), " elements are not region objects"));
  }
  std::vector<std::set<std::string>> known_seen;
  if (absl::Status literal = LiteralChecker(json).Check(known_seen);
      !literal.ok()) {
    return literal;
  }
  // A known field whose name was written with escapes ("siz\u0065") is
  // one the literal check did not see: refused rather than unchecked.
  for (int i = 0; i < array.values_size(); ++i) {
    for (const auto& [name, value] : array.values(i).struct_value().fields()) {
      if (region_type->FindFieldByName(name) != nullptr &&
          (static_cast<size_t>(i) >= known_seen.size() ||
           known_seen[i].count(name) == 0)) {
        return Invalid(i, absl::StrCat("the name of field ", name,
                                       " is written with escapes"));
      }
    }
  }
  HandshakeBody body;
  body.regions.reserve(handshake.regions_size());
  body.sends_page_size = true;
  for (int i = 0; i < handshake.regions_size(); ++i) {
    absl::StatusOr<MemoryRegion> region =
        Check(handshake.regions(i), i, file_size);
    if (!region.ok()) return region.status();
    body.regions.push_back(*region);
    body.sends_page_size &= handshake.regions(i).has_page_size();
  }
  body.unknown_fields.assign(unknown.begin(), unknown.end());
  return body;
}

[[nodiscard]] absl::StatusOr<std::vector<MemoryRegion>> ParseHandshake(
    absl::string_view json, uint64_t file_size) {
  absl::StatusOr<HandshakeBody> body = ParseHandshakeBody(json, file_size);
  if (!body.ok()) return body.status();
  return std::move(body->regions);
}

bool HandshakeComplete(absl::string_view received) {
  const size_t first = received.find_first_not_of(" \t\r\n");
  if (first == absl::string_view::npos) return false;
  if (received[first] != '[') return true;  // Refused as it is.
  // Brackets outside strings (either quote: the JSON mapping takes both);
  // the parser judges the rest.
  int depth = 0;
  char quote = 0;  // Inside a string: its quote.
  bool escaped = false;
  for (size_t i = first; i < received.size(); ++i) {
    const char c = received[i];
    if (quote != 0) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && --depth <= 0) {
      return true;
    }
  }
  return false;
}

}  // namespace fcvm::uffd
