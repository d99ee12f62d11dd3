#ifndef FCVM_AGENT_PLAN_H_
#define FCVM_AGENT_PLAN_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/plan.pb.h"

namespace fcvm::agent {

// Parses a plan from JSON (protobuf's JSON mapping; unknown fields are
// errors) and checks it with ValidatePlan.
[[nodiscard]] absl::StatusOr<Plan> ParsePlan(absl::string_view json);

// The agent's checks of a plan, for the host to run before it boots a VM
// (the guest would refuse the same plan only after the boot): an image is
// required; ports, volumes, hostname, environment and network identity
// must make sense. INVALID_ARGUMENT naming the field and the offending
// value ("plan: hostname: 'my_vm' is not a host name: ..."), the same
// message the guest reports.
[[nodiscard]] absl::Status ValidatePlan(const Plan& plan);

// The hostname rule (RFC 1123): dot-separated labels of ASCII letters,
// digits and '-', each 1 to 63 bytes, not starting or ending with '-'; at
// most 64 bytes in all (sethostname's limit). INVALID_ARGUMENT saying
// which part breaks it: "'my_vm' is not a host name: '_' is not a letter,
// digit or '-'". The runner names VMs by it.
[[nodiscard]] absl::Status ValidateHostname(absl::string_view name);

// The plan as JSON, as the host writes it.
[[nodiscard]] absl::StatusOr<std::string> PlanToJson(const Plan& plan);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_PLAN_H_
