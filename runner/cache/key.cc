#include "runner/cache/key.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/sha256.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/snapshot/machine.h"

namespace fcvm::runner {
namespace {

// Words as one value, each escaped, so {"a b"} and {"a", "b"} differ.
std::string Words(const google::protobuf::RepeatedPtrField<std::string>& w) {
  std::vector<std::string> escaped;
  for (const std::string& word : w) {
    escaped.push_back(absl::StrCat("\"", absl::CEscape(word), "\""));
  }
  return absl::StrJoin(escaped, " ");
}

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  return json;
}

}  // namespace

[[nodiscard]] absl::StatusOr<CacheKey> ComputeCacheKey(
    const VmState& state, const std::string& vmm_version,
    const Digester& digest) {
  const VmSpec& spec = state.spec();
  const agent::Plan& plan = spec.plan();
  const std::string& image = plan.image();
  if (!absl::StartsWith(image, "oci-archive:") &&
      !absl::StartsWith(image, "rootfs:") &&
      !absl::StrContains(image, "@sha256:")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "image '", state.image(),
        "' comes from a registry by tag: its digest is only known after the "
        "pull (a local archive, or IMAGE@sha256:..., is cacheable)"));
  }
  if (plan.volumes_size() > 0 || state.volumes_size() > 0) {
    return absl::FailedPreconditionError(
        "volumes (-v): a VM restored from a snapshot cannot have them yet");
  }
  if (!state.restored_from().snapshot().empty() ||
      !state.restored_from().cache_key().empty()) {
    return absl::FailedPreconditionError("the VM is restored, not booted");
  }
  CacheKey key;
  auto part = [&key](const std::string& name, std::string value) {
    CacheKeyPart* p = key.add_parts();
    p->set_name(name);
    p->set_value(std::move(value));
  };
  part("backend", state.backend());
  part("vmm", state.vmm_binary());
  part("vmm_version", vmm_version);
  part("accel", state.accel());
  part("arch", spec.arch());
  const MachineDescription machine = DescribeMachine(state);
  part("machine", absl::StrCat(machine.machine, "; ", machine.cpu_model, "; ",
                               absl::StrJoin(machine.devices, ", ")));
  part("vcpus", absl::StrCat(spec.vcpus()));
  part("memory_mib", absl::StrCat(spec.memory_mib()));
  // Not spec.channel: CreateVm chooses it from the backend, after this.
  part("network", state.network().mode());
  part("boot_args", spec.boot_args());
  ASSIGN_OR_RETURN(std::string kernel, digest("kernel", spec.kernel()));
  part("kernel", kernel);
  for (int i = 0; i < spec.disks_size(); ++i) {
    const Disk& disk = spec.disks(i);
    if (!disk.read_only()) continue;
    const std::string role =
        i == 0 ? "rootfs" : absl::StrCat("drive ", disk.guest_device());
    ASSIGN_OR_RETURN(std::string sha, digest(role, disk.path()));
    part(role, sha);
  }
  part("image", image);
  part("command", Words(plan.command()));
  part("args", Words(plan.args()));
  std::vector<std::pair<std::string, std::string>> env(plan.env().begin(),
                                                       plan.env().end());
  std::sort(env.begin(), env.end());
  std::vector<std::string> lines;
  for (const auto& [name, value] : env) {
    lines.push_back(absl::CEscape(absl::StrCat(name, "=", value)));
  }
  part("env", absl::StrJoin(lines, "\n"));
  part("working_dir", plan.working_dir());
  part("user", plan.user());
  std::vector<std::string> ports;
  for (const agent::PortMapping& port : plan.ports()) {
    ports.push_back(
        absl::StrCat(port.guest_port(), "/",
                     port.protocol().empty() ? "tcp" : port.protocol()));
  }
  std::sort(ports.begin(), ports.end());
  part("guest_ports", absl::StrJoin(ports, " "));
  part("resources", Json(plan.resources()));
  part("restart", agent::RestartPolicy_Name(plan.restart()));
  part("stay", plan.stay() ? "true" : "false");
  part("readiness", Json(plan.readiness()));
  part("stop_timeout_seconds", absl::StrCat(plan.stop_timeout_seconds()));

  std::string text;
  for (const CacheKeyPart& p : key.parts()) {
    absl::StrAppend(&text, p.name(), "=", absl::CEscape(p.value()), "\n");
  }
  key.set_key(Sha256Hex(text).substr(0, 32));
  return key;
}

}  // namespace fcvm::runner
