#include "agent/plan_source.h"

#include <unistd.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::agent {

[[nodiscard]] absl::StatusOr<std::string> CmdlinePlanSource::Fetch(absl::Time) {
  std::string json;
  // Padding is optional on the command line ('=' is awkward there).
  if (!absl::WebSafeBase64Unescape(encoded_, &json) || json.empty()) {
    return absl::InvalidArgumentError(
        "kernel command line: fcvm.plan is not base64url-encoded JSON");
  }
  return json;
}

[[nodiscard]] absl::StatusOr<std::string> FwCfgPlanSource::Fetch(absl::Time) {
  if (ports_.has_value()) {
    return Annotate(ReadFwCfgFileViaPorts(*ports_, kFwCfgPlanName),
                    "fw_cfg plan");
  }
  return Annotate(ReadFile(sysfs_path_), "fw_cfg plan");
}

[[nodiscard]] absl::StatusOr<std::string> MmdsPlanSource::Fetch(
    absl::Time deadline) {
  return GetWithRetry(client_, kMmdsPlanPath, deadline);
}

std::string FwCfgPath(const std::string& sysfs_root, absl::string_view name) {
  return absl::StrCat(sysfs_root, "/firmware/qemu_fw_cfg/by_name/", name,
                      "/raw");
}

std::unique_ptr<PlanSource> ChoosePlanSource(absl::string_view cmdline,
                                             const std::string& sysfs_root,
                                             MmdsOptions mmds) {
  for (absl::string_view word :
       absl::StrSplit(cmdline, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&word, "fcvm.plan=")) {
      return std::make_unique<CmdlinePlanSource>(std::string(word));
    }
  }
  const std::string fw_cfg = FwCfgPath(sysfs_root, kFwCfgPlanName);
  if (access(fw_cfg.c_str(), R_OK) == 0) {
    return std::make_unique<FwCfgPlanSource>(fw_cfg);
  }
  if (absl::StatusOr<FwCfgPorts> ports = FwCfgPortsFromCmdline(cmdline);
      ports.ok()) {
    return std::make_unique<FwCfgPlanSource>(*ports);
  }
  return std::make_unique<MmdsPlanSource>(std::move(mmds));
}

}  // namespace fcvm::agent
