#include "uffd/handshake.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "uffd/handshake.pb.h"

namespace fcvm::uffd {
namespace {

bool KnownPageSize(uint64_t size) {
  return size == 4096 || size == 16384 || size == 65536 || size == (2 << 20);
}

absl::Status Invalid(size_t index, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("handshake region ", index, ": ", why));
}

absl::StatusOr<MemoryRegion> Check(const Region& r, size_t index,
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

absl::StatusOr<std::vector<MemoryRegion>> ParseHandshake(absl::string_view json,
                                                         uint64_t file_size) {
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
    return absl::InvalidArgumentError(
        absl::StrCat("handshake is not a JSON array of regions: ",
                     std::string(status.message())));
  }
  if (array.values_size() == 0) {
    return absl::InvalidArgumentError("handshake has no regions");
  }
  if (static_cast<size_t>(array.values_size()) > kMaxRegions) {
    return absl::InvalidArgumentError(
        absl::StrCat("handshake has ", array.values_size(),
                     " regions (at most ", kMaxRegions, ")"));
  }
  // Then the typed parse: exact 64-bit integers, unknown fields refused.
  Handshake handshake;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
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
  std::vector<MemoryRegion> regions;
  regions.reserve(handshake.regions_size());
  for (int i = 0; i < handshake.regions_size(); ++i) {
    absl::StatusOr<MemoryRegion> region =
        Check(handshake.regions(i), i, file_size);
    if (!region.ok()) return region.status();
    regions.push_back(*region);
  }
  return regions;
}

}  // namespace fcvm::uffd
