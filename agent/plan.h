#ifndef FCVM_AGENT_PLAN_H_
#define FCVM_AGENT_PLAN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/plan.pb.h"

namespace fcvm::agent {

// Parses a plan from JSON (protobuf's JSON mapping; unknown fields are
// errors) and checks it: an image is required; ports, volumes, hostname,
// environment and network identity must make sense. Errors name the field
// and the offending value.
absl::StatusOr<Plan> ParsePlan(absl::string_view json);

// The plan as JSON, as the host writes it.
absl::StatusOr<std::string> PlanToJson(const Plan& plan);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_PLAN_H_
