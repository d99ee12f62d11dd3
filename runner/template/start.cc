#include "runner/template/start.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "runner/snapshot/clone.h"
#include "runner/snapshot/machine.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vm/host_facts.h"
#include "runner/vm/launch.h"
#include "runner/vm/run.h"

namespace fcvm::runner {
namespace {

int Say(int code, const std::string& message) {
  std::fprintf(stderr, "fcvm: %s\n", message.c_str());
  return code;
}

}  // namespace

int RunTemplate(StateStore& store, const RunFlags& flags,
                const std::vector<std::string>& holder_argv) {
  const std::string& tag = flags.template_name;
  std::vector<std::string> fixed;
  if (!flags.env.empty()) fixed.push_back("-e");
  if (!flags.volumes.empty()) fixed.push_back("-v");
  if (!flags.entrypoint.empty()) fixed.push_back("--entrypoint");
  if (!flags.workdir.empty()) fixed.push_back("-w");
  if (!flags.user.empty()) fixed.push_back("-u");
  if (flags.cpus != 1) fixed.push_back("--cpus");
  if (flags.memory_mib != 512) fixed.push_back("-m");
  if (!fixed.empty()) {
    return Say(
        2, absl::StrCat("--template ", tag, ": ", absl::StrJoin(fixed, ", "),
                        " cannot change what the template's snapshot "
                        "holds (put it in the template)"));
  }
  SnapshotStore snapshots(store.root());
  absl::StatusOr<SnapshotManifest> manifest = snapshots.Read(tag);
  if (!manifest.ok()) {
    return Say(1, absl::StrCat(manifest.status().message(),
                               " (fcvm template build FILE makes one)"));
  }
  const std::string dir = snapshots.TagDir(tag);
  if (absl::Status ok = CheckRestorable(*manifest, ObserveHost(*manifest, dir));
      !ok.ok()) {
    return Say(1, std::string(ok.message()));
  }
  absl::StatusOr<LaunchSeeds> seeds = DrawSeeds();
  if (!seeds.ok()) return Say(1, std::string(seeds.status().message()));
  const std::string name =
      flags.name.empty() ? NameFromImage(tag, seeds->name_suffix) : flags.name;
  if (store.Read(name).ok()) {
    return Say(1, absl::StrCat("a VM named '", name, "' exists (--name)"));
  }
  CloneRequest request;
  request.tag = tag;
  request.ports = flags.ports;
  absl::StatusOr<std::vector<std::vector<PublishedPort>>> ports =
      ChooseHostPorts(*manifest, request);
  if (!ports.ok()) return Say(1, std::string(ports.status().message()));
  absl::StatusOr<Launch> launch =
      PlanClone(*manifest, dir, name, MemoryBackend::kFile, flags.detach,
                store.root(), *seeds, ports->front());
  if (!launch.ok()) return Say(1, std::string(launch.status().message()));
  ApplyKeeping(flags, seeds->now_unix_ms, launch->state);
  std::fprintf(stderr, "fcvm: %s: template %s (key %s, built %s ago)\n",
               name.c_str(), tag.c_str(), manifest->template_key().c_str(),
               absl::FormatDuration(
                   absl::Trunc(absl::Now() - absl::FromUnixMillis(
                                                 manifest->created_unix_ms()),
                               absl::Seconds(1)))
                   .c_str());
  return RunVm(store, std::move(*launch), holder_argv);
}

}  // namespace fcvm::runner
