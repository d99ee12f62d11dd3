#include "runner/vmm/firecracker/testing/openapi.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::runner::firecracker::testing {
namespace {

using ::google::protobuf::Value;

class Checker {
 public:
  explicit Checker(const YAML::Node& root) : root_(root) {}

  void Check(const YAML::Node& schema, const Value& value,
             const std::string& where) {
    if (schema["$ref"]) {
      const std::string ref = schema["$ref"].as<std::string>();
      const std::string name = ref.substr(ref.rfind('/') + 1);
      const YAML::Node target = root_["definitions"][name];
      if (!target) return Error(where, absl::StrCat("unresolved ", ref));
      return Check(target, value, where);
    }
    const std::string type =
        schema["type"] ? schema["type"].as<std::string>() : "";
    if (type == "object" || (type.empty() && schema["properties"])) {
      return CheckObject(schema, value, where);
    }
    if (type == "array") {
      if (value.kind_case() != Value::kListValue) {
        return Error(where, "is not an array");
      }
      for (int i = 0; i < value.list_value().values_size(); ++i) {
        Check(schema["items"], value.list_value().values(i),
              absl::StrCat(where, "[", i, "]"));
      }
      return;
    }
    if (type == "string") {
      if (value.kind_case() != Value::kStringValue) {
        return Error(where, "is not a string");
      }
      if (schema["enum"]) {
        std::vector<std::string> allowed;
        for (const YAML::Node& option : schema["enum"]) {
          allowed.push_back(option.as<std::string>());
        }
        if (std::find(allowed.begin(), allowed.end(), value.string_value()) ==
            allowed.end()) {
          Error(where,
                absl::StrCat("'", value.string_value(), "' is not one of ",
                             absl::StrJoin(allowed, ", ")));
        }
      }
      return;
    }
    if (type == "integer" || type == "number") {
      if (value.kind_case() != Value::kNumberValue) {
        return Error(where, absl::StrCat("is not a number (a JSON ",
                                         KindName(value), ")"));
      }
      const double n = value.number_value();
      if (type == "integer" && n != std::floor(n)) {
        Error(where, "is not an integer");
      }
      if (schema["minimum"] && n < schema["minimum"].as<double>()) {
        Error(where, absl::StrCat(n, " is below the minimum ",
                                  schema["minimum"].as<double>()));
      }
      if (schema["maximum"] && n > schema["maximum"].as<double>()) {
        Error(where, absl::StrCat(n, " is above the maximum ",
                                  schema["maximum"].as<double>()));
      }
      return;
    }
    if (type == "boolean") {
      if (value.kind_case() != Value::kBoolValue) {
        Error(where, "is not a boolean");
      }
      return;
    }
    Error(where, absl::StrCat("schema type '", type, "' is not understood"));
  }

  std::vector<std::string> errors;

 private:
  static std::string KindName(const Value& value) {
    switch (value.kind_case()) {
      case Value::kStringValue:
        return "string";
      case Value::kBoolValue:
        return "boolean";
      case Value::kListValue:
        return "array";
      case Value::kStructValue:
        return "object";
      case Value::kNullValue:
        return "null";
      default:
        return "number";
    }
  }

  void CheckObject(const YAML::Node& schema, const Value& value,
                   const std::string& where) {
    if (value.kind_case() != Value::kStructValue) {
      return Error(where, absl::StrCat("is not an object (a JSON ",
                                       KindName(value), ")"));
    }
    const auto& fields = value.struct_value().fields();
    if (schema["required"]) {
      for (const YAML::Node& name : schema["required"]) {
        if (!fields.contains(name.as<std::string>())) {
          Error(where, absl::StrCat("lacks the required '",
                                    name.as<std::string>(), "'"));
        }
      }
    }
    const YAML::Node properties = schema["properties"];
    const YAML::Node additional = schema["additionalProperties"];
    // An object that names its fields is a Rust struct Firecracker
    // deserialises with deny_unknown_fields; one that names none (the MMDS
    // store) is free-form, as swagger's default has it.
    const bool closed = properties && !(additional && additional.IsScalar() &&
                                        additional.as<bool>());
    for (const auto& [name, field] : fields) {
      const std::string at = absl::StrCat(where, ".", name);
      if (properties && properties[name]) {
        Check(properties[name], field, at);
      } else if (closed) {
        Error(at, "is not a field of this object");
      }
    }
  }

  void Error(const std::string& where, const std::string& what) {
    errors.push_back(absl::StrCat(where, " ", what));
  }

  const YAML::Node& root_;
};

// "/drives/vda" against "/drives/{drive_id}".
bool PathMatches(absl::string_view pattern, absl::string_view path) {
  std::vector<absl::string_view> want = absl::StrSplit(pattern, '/');
  std::vector<absl::string_view> got = absl::StrSplit(path, '/');
  if (want.size() != got.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool parameter =
        absl::StartsWith(want[i], "{") && absl::EndsWith(want[i], "}");
    if (parameter ? got[i].empty() : want[i] != got[i]) return false;
  }
  return true;
}

// The operation (paths.<template>.<method>) or an undefined node. yaml-cpp
// nodes are references: assigning one overwrites what it refers to, so
// these return fresh nodes instead.
YAML::Node FindOperation(const YAML::Node& root, const std::string& method,
                         const std::string& path) {
  for (const auto& entry : root["paths"]) {
    if (PathMatches(entry.first.as<std::string>(), path)) {
      return entry.second[absl::AsciiStrToLower(method)];
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node BodySchema(const YAML::Node& operation) {
  for (const auto& parameter : operation["parameters"]) {
    if (parameter["in"].as<std::string>() == "body") {
      return parameter["schema"];
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

}  // namespace

[[nodiscard]] absl::StatusOr<OpenApiSpec> OpenApiSpec::Load(
    const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root["paths"] || !root["definitions"]) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no paths or definitions: not an API spec"));
    }
    return OpenApiSpec(std::move(root));
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports errors only by throwing.
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

std::string OpenApiSpec::version() const {
  return root_["info"]["version"].as<std::string>();
}

[[nodiscard]] absl::Status OpenApiSpec::Check(const std::string& method,
                                              const std::string& path,
                                              const std::string& body) const {
  const std::string request = absl::StrCat(method, " ", path);
  const YAML::Node operation = FindOperation(root_, method, path);
  if (!operation.IsDefined() || operation.IsNull()) {
    return absl::NotFoundError(absl::StrCat(
        request, ": no such operation in Firecracker ", version()));
  }
  const YAML::Node schema = BodySchema(operation);
  if (!schema.IsDefined() || schema.IsNull()) {
    return body.empty()
               ? absl::OkStatus()
               : absl::InvalidArgumentError(absl::StrCat(
                     request, ": takes no body in Firecracker ", version()));
  }
  Value value;
  auto parsed = google::protobuf::util::JsonStringToMessage(body, &value);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        request, ": body is not JSON: ", std::string(parsed.message())));
  }
  Checker checker(root_);
  checker.Check(schema, value, "body");
  if (checker.errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(request, " against Firecracker ", version(), ":\n  ",
                   absl::StrJoin(checker.errors, "\n  ")));
}

}  // namespace fcvm::runner::firecracker::testing
