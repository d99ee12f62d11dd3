#include "agent/podman.h"

#include <map>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::agent {
namespace {

constexpr absl::string_view kOciArchive = "oci-archive:";
constexpr absl::string_view kRootfs = "rootfs:";

// A JSON array of strings, for --entrypoint (Podman reads a JSON array as
// an exec-form entrypoint; a plain string would go through a shell).
std::string JsonArray(
    const google::protobuf::RepeatedPtrField<std::string>& items) {
  google::protobuf::ListValue list;
  for (const std::string& item : items)
    list.add_values()->set_string_value(item);
  std::string json;
  // Strings only: this cannot fail.
  (void)google::protobuf::util::MessageToJsonString(list, &json);
  return json;
}

}  // namespace

std::string OciArchivePath(const Plan& plan) {
  absl::string_view image = plan.image();
  if (!absl::ConsumePrefix(&image, kOciArchive)) return "";
  return std::string(image);
}

std::string RootfsDevice(const Plan& plan) {
  absl::string_view image = plan.image();
  if (!absl::ConsumePrefix(&image, kRootfs)) return "";
  return std::string(image);
}

std::vector<std::string> PodmanLoadArgv(absl::string_view archive) {
  return {"podman", "load", "-q", "-i", std::string(archive)};
}

[[nodiscard]] absl::StatusOr<std::string> LoadedImage(
    absl::string_view output) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "Loaded image")) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::vector<absl::string_view> names =
        absl::StrSplit(line.substr(colon + 1), ',', absl::SkipWhitespace());
    if (!names.empty()) {
      return std::string(absl::StripAsciiWhitespace(names[0]));
    }
  }
  return absl::DataLossError(
      absl::StrCat("podman load printed no 'Loaded image' line: '",
                   absl::CHexEscape(output.substr(0, 300)), "'"));
}

std::string VolumeHostPath(const VolumeMount& volume, int index) {
  if (volume.has_directory()) return volume.directory();
  return absl::StrCat(kVolumeMountRoot, "/", index);
}

std::vector<std::string> PodmanRunArgv(const Plan& plan,
                                       absl::string_view image,
                                       bool pull_never) {
  std::vector<std::string> argv = {
      "podman", "run", "--name", kContainerName, "--replace",
      // A VM port is the container port; ports in the plan are the
      // runner's forwarding and the agent's readiness probe.
      "--network=host",
      // The VM's hostname, so a clone's new name reaches the container.
      "--uts=host",
      // Podman sends READY=1 to $NOTIFY_SOCKET once the container runs.
      "--sdnotify=conmon"};
  // A baked root filesystem has no image config for Podman to read: its
  // config comes as flags, under the plan's own, which win as they would
  // over an image's.
  const bool baked = plan.has_rootfs();
  const RootfsImage& config = plan.rootfs();
  if (pull_never && !baked) argv.push_back("--pull=never");
  // Sorted (a protobuf map has no order): same plan, same command line.
  std::map<std::string, std::string> env;
  for (const std::string& variable : config.env()) {
    const size_t eq = variable.find('=');
    if (eq != std::string::npos) {
      env[variable.substr(0, eq)] = variable.substr(eq + 1);
    }
  }
  for (const auto& [key, value] : plan.env()) env[key] = value;
  for (const auto& [key, value] : env) {
    argv.push_back("--env");
    argv.push_back(absl::StrCat(key, "=", value));
  }
  const std::string& workdir =
      plan.working_dir().empty() ? config.working_dir() : plan.working_dir();
  if (!workdir.empty()) argv.push_back(absl::StrCat("--workdir=", workdir));
  const std::string& user = plan.user().empty() ? config.user() : plan.user();
  if (!user.empty()) argv.push_back(absl::StrCat("--user=", user));
  if (!config.stop_signal().empty()) {
    argv.push_back(absl::StrCat("--stop-signal=", config.stop_signal()));
  }
  if (plan.resources().cpus() > 0) {
    argv.push_back(absl::StrCat("--cpus=", plan.resources().cpus()));
  }
  if (plan.resources().memory_mib() > 0) {
    argv.push_back(
        absl::StrCat("--memory=", plan.resources().memory_mib(), "m"));
  }
  for (int i = 0; i < plan.volumes_size(); ++i) {
    const VolumeMount& volume = plan.volumes(i);
    argv.push_back("--volume");
    argv.push_back(absl::StrCat(VolumeHostPath(volume, i), ":",
                                volume.container_path(),
                                volume.read_only() ? ":ro" : ""));
  }
  if (plan.command_size() > 0) {
    argv.push_back(absl::StrCat("--entrypoint=", JsonArray(plan.command())));
  } else if (baked && config.entrypoint_size() > 0) {
    argv.push_back(
        absl::StrCat("--entrypoint=", JsonArray(config.entrypoint())));
  }
  if (!baked) {
    argv.push_back(std::string(image));
    argv.insert(argv.end(), plan.args().begin(), plan.args().end());
    return argv;
  }
  argv.push_back("--rootfs");
  argv.push_back(std::string(image));
  // Podman's rule for an image: the user's args replace its Cmd, and an
  // entrypoint of the user's own drops the Cmd that went with the image's.
  if (plan.args_size() > 0) {
    argv.insert(argv.end(), plan.args().begin(), plan.args().end());
  } else if (plan.command_size() == 0) {
    argv.insert(argv.end(), config.cmd().begin(), config.cmd().end());
  }
  return argv;
}

std::vector<std::string> PodmanRestartArgv() {
  return {"podman", "start", "--attach", kContainerName};
}

std::vector<std::string> PodmanStopArgv(absl::Duration grace) {
  return {"podman", "stop", "-t", absl::StrCat(absl::ToInt64Seconds(grace)),
          kContainerName};
}

}  // namespace fcvm::agent
