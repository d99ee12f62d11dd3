#ifndef FCVM_RUNNER_VMM_FIRECRACKER_TESTING_OPENAPI_H_
#define FCVM_RUNNER_VMM_FIRECRACKER_TESTING_OPENAPI_H_

// Checks API requests against Firecracker's OpenAPI (swagger 2.0)
// specification: the path and method exist, and the JSON body fits the
// body parameter's schema (types, required fields, enums, bounds, and no
// field the schema does not name: Firecracker rejects unknown fields).

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace fcvm::runner::firecracker::testing {

class OpenApiSpec {
 public:
  [[nodiscard]] static absl::StatusOr<OpenApiSpec> Load(
      const std::string& path);

  // info.version, e.g. "1.16.1".
  std::string version() const;

  // OK, or every way the request departs from the spec, one per line.
  [[nodiscard]] absl::Status Check(const std::string& method,
                                   const std::string& path,
                                   const std::string& body) const;

 private:
  explicit OpenApiSpec(YAML::Node root) : root_(std::move(root)) {}

  YAML::Node root_;
};

}  // namespace fcvm::runner::firecracker::testing

#endif  // FCVM_RUNNER_VMM_FIRECRACKER_TESTING_OPENAPI_H_
