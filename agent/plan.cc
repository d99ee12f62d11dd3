#include "agent/plan.h"

#include <arpa/inet.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::agent {
namespace {

[[nodiscard]] absl::Status Invalid(absl::string_view field,
                                   absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("plan: ", field, ": ", why));
}

bool IsIpv4(const std::string& text) {
  in_addr addr;
  return inet_pton(AF_INET, text.c_str(), &addr) == 1;
}

bool IsMac(absl::string_view mac) {
  std::vector<absl::string_view> parts = absl::StrSplit(mac, ':');
  if (parts.size() != 6) return false;
  for (absl::string_view part : parts) {
    if (part.size() != 2 || !absl::ascii_isxdigit(part[0]) ||
        !absl::ascii_isxdigit(part[1])) {
      return false;
    }
  }
  return true;
}

[[nodiscard]] absl::Status CheckNetwork(const NetworkIdentity& network) {
  if (!network.ip_cidr().empty()) {
    std::vector<std::string> parts = absl::StrSplit(network.ip_cidr(), '/');
    int prefix = -1;
    if (parts.size() != 2 || !IsIpv4(parts[0]) ||
        !absl::SimpleAtoi(parts[1], &prefix) || prefix < 1 || prefix > 32) {
      return Invalid("network.ip_cidr",
                     absl::StrCat("'", network.ip_cidr(),
                                  "' is not an IPv4 address/prefix"));
    }
  }
  if (!network.gateway().empty() && !IsIpv4(network.gateway())) {
    return Invalid("network.gateway",
                   absl::StrCat("'", network.gateway(), "' is not IPv4"));
  }
  for (const std::string& dns : network.dns()) {
    if (!IsIpv4(dns)) {
      return Invalid("network.dns", absl::StrCat("'", dns, "' is not IPv4"));
    }
  }
  if (!network.mac().empty() && !IsMac(network.mac())) {
    return Invalid("network.mac", absl::StrCat("'", network.mac(),
                                               "' is not xx:xx:xx:xx:xx:xx"));
  }
  return absl::OkStatus();
}

// A baked root filesystem: "rootfs:<device>" names the drive `rootfs`
// describes, and its config is what Podman would accept from an image.
[[nodiscard]] absl::Status CheckRootfs(const Plan& plan) {
  const RootfsImage& rootfs = plan.rootfs();
  if (!plan.has_rootfs() || rootfs.device().empty()) {
    return Invalid("rootfs", absl::StrCat("image '", plan.image(),
                                          "' needs rootfs.device"));
  }
  if (!absl::StartsWith(rootfs.device(), "/dev/")) {
    return Invalid("rootfs.device",
                   absl::StrCat("'", rootfs.device(), "' is not under /dev/"));
  }
  if (plan.image() != absl::StrCat("rootfs:", rootfs.device())) {
    return Invalid("image", absl::StrCat("'", plan.image(), "' is not 'rootfs:",
                                         rootfs.device(), "'"));
  }
  for (const std::string& variable : rootfs.env()) {
    const size_t eq = variable.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Invalid("rootfs.env",
                     absl::StrCat("'", variable, "' is not KEY=VALUE"));
    }
  }
  if (!rootfs.working_dir().empty() &&
      !absl::StartsWith(rootfs.working_dir(), "/")) {
    return Invalid("rootfs.working_dir", absl::StrCat("'", rootfs.working_dir(),
                                                      "' is not absolute"));
  }
  if (rootfs.entrypoint().empty() && rootfs.cmd().empty() &&
      plan.command().empty() && plan.args().empty()) {
    return Invalid("rootfs", "no entrypoint, cmd, command or args to run");
  }
  return absl::OkStatus();
}

}  // namespace

[[nodiscard]] absl::Status ValidateHostname(absl::string_view name) {
  auto refuse = [name](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", absl::CHexEscape(name), "' is not a host name: ", why));
  };
  if (name.empty()) return refuse("it is empty");
  if (name.size() > 64) {
    return refuse(absl::StrCat(name.size(), " bytes; at most 64"));
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return refuse("an empty label");
    if (label.size() > 63) {
      return refuse(
          absl::StrCat("a label of ", label.size(), " bytes; at most 63"));
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') {
        return refuse(absl::StrCat("'",
                                   absl::CHexEscape(absl::string_view(&c, 1)),
                                   "' is not a letter, digit or '-'"));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return refuse(
          absl::StrCat("label '", label, "' starts or ends with '-'"));
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ValidatePlan(const Plan& plan) {
  if (plan.image().empty()) return Invalid("image", "required");
  if (absl::StrContains(plan.image(), " ")) {
    return Invalid("image", absl::StrCat("'", plan.image(), "' has a space"));
  }
  if (absl::StartsWith(plan.image(), "rootfs:") || plan.has_rootfs()) {
    RETURN_IF_ERROR(CheckRootfs(plan));
  }
  for (const auto& [key, value] : plan.env()) {
    if (key.empty() || absl::StrContains(key, "=")) {
      return Invalid("env", absl::StrCat("bad variable name '", key, "'"));
    }
  }
  if (!plan.working_dir().empty() &&
      !absl::StartsWith(plan.working_dir(), "/")) {
    return Invalid("working_dir",
                   absl::StrCat("'", plan.working_dir(), "' is not absolute"));
  }
  for (const PortMapping& port : plan.ports()) {
    if (port.guest_port() == 0 || port.guest_port() > 65535 ||
        port.host_port() > 65535) {
      return Invalid("ports",
                     absl::StrCat("port ", port.host_port(), ":",
                                  port.guest_port(), " is outside 1-65535"));
    }
    if (!port.protocol().empty() && port.protocol() != "tcp" &&
        port.protocol() != "udp") {
      return Invalid("ports", absl::StrCat("protocol '", port.protocol(),
                                           "' is neither tcp nor udp"));
    }
  }
  for (const VolumeMount& volume : plan.volumes()) {
    if (volume.source_case() == VolumeMount::SOURCE_NOT_SET) {
      return Invalid("volumes",
                     absl::StrCat("'", volume.container_path(),
                                  "' has no block_device or directory"));
    }
    if (!absl::StartsWith(volume.container_path(), "/")) {
      return Invalid("volumes",
                     absl::StrCat("container_path '", volume.container_path(),
                                  "' is not absolute"));
    }
  }
  if (!plan.hostname().empty()) {
    if (absl::Status hostname = ValidateHostname(plan.hostname());
        !hostname.ok()) {
      return Invalid("hostname", hostname.message());
    }
  }
  const Readiness& readiness = plan.readiness();
  if (readiness.tcp_port() > 65535) {
    return Invalid("readiness.tcp_port",
                   absl::StrCat(readiness.tcp_port(), " is outside 1-65535"));
  }
  if (!readiness.http_path().empty() &&
      (!absl::StartsWith(readiness.http_path(), "/") ||
       absl::StrContains(readiness.http_path(), " "))) {
    return Invalid("readiness.http_path",
                   absl::StrCat("'", readiness.http_path(),
                                "' is not an absolute path without spaces"));
  }
  if (!readiness.http_path().empty() && readiness.tcp_port() == 0 &&
      plan.ports().empty()) {
    return Invalid("readiness.http_path", "set, but no port to probe");
  }
  if (plan.entropy().size() > 512) {
    return Invalid("entropy",
                   absl::StrCat(plan.entropy().size(), " bytes; at most 512"));
  }
  if (!plan.machine_id().empty() &&
      (plan.machine_id().size() != 32 ||
       plan.machine_id().find_first_not_of("0123456789abcdef") !=
           std::string::npos)) {
    return Invalid("machine_id", absl::StrCat("'", plan.machine_id(),
                                              "' is not 32 lowercase hex "
                                              "digits"));
  }
  return CheckNetwork(plan.network());
}

[[nodiscard]] absl::StatusOr<Plan> ParsePlan(absl::string_view json) {
  Plan plan;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json),
                                                            &plan, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plan: not a valid plan: ", std::string(status.message())));
  }
  RETURN_IF_ERROR(ValidatePlan(plan));
  return plan;
}

[[nodiscard]] absl::StatusOr<std::string> PlanToJson(const Plan& plan) {
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(plan, &json);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("plan to JSON: ", std::string(status.message())));
  }
  return json;
}

}  // namespace fcvm::agent
