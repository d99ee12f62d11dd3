#include "rootfs/image/definition.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::rootfs {

[[nodiscard]] absl::StatusOr<ImageDefinition> ReadImageDefinition(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ImageDefinition image;
  if (!google::protobuf::TextFormat::ParseFromString(text, &image)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": not a valid ImageDefinition "
                     "(rootfs/image/image.proto); see messages above"));
  }
  return image;
}

[[nodiscard]] absl::StatusOr<std::string> LockfileToJson(const Lockfile& lock) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status =
      google::protobuf::util::MessageToJsonString(lock, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("lockfile to JSON: ", status.ToString()));
  }
  return json;
}

[[nodiscard]] absl::StatusOr<Lockfile> LockfileFromJson(
    const std::string& json) {
  Lockfile lock;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status =
      google::protobuf::util::JsonStringToMessage(json, &lock, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed lockfile: ", status.ToString()));
  }
  return lock;
}

}  // namespace fcvm::rootfs
