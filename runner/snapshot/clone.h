#ifndef FCVM_RUNNER_SNAPSHOT_CLONE_H_
#define FCVM_RUNNER_SNAPSHOT_CLONE_H_

// `fcvm clone TAG --count N`: N VMs restored from one snapshot, each its
// own machine: its own name (PREFIX-1..N), id, writable disk (a copy of
// the snapshot's), published ports, and identity (hostname, machine-id,
// entropy, clock: a new generation of the plan, which its agent applies as
// soon as the supervisor says it was restored). PlanClones is pure; the
// manifest is checked against the host before anything is made
// (machine.h).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/state/state_store.h"
#include "runner/vm/launch.h"

namespace fcvm::runner {

struct CloneRequest {
  std::string tag;
  int count = 1;
  std::string prefix;  // Empty: the tag.
  // -p: the clones' published ports (host 0: a free one each); empty: the
  // snapshot's guest ports, each clone on free host ports. With --count
  // above 1 a fixed host port H is H, H+1, ... for clone 1, 2, ...
  std::vector<PublishedPort> ports;
  bool detach = false;
  MemoryBackend memory = MemoryBackend::kFile;
  // kUffd: how to run fcvm itself (the program and --state_dir), for the
  // memory server it starts on demand (memory_server.h).
  std::vector<std::string> fcvm_argv;
};

// The ports clone `index` (0-based) publishes, before free host ports are
// filled in (host_port 0 stays 0).
std::vector<PublishedPort> ClonePorts(const SnapshotManifest& manifest,
                                      const CloneRequest& request, int index);

// Host ports for every clone (ClonePorts, host port 0 made a free one),
// none twice.
[[nodiscard]] absl::StatusOr<std::vector<std::vector<PublishedPort>>>
ChooseHostPorts(const SnapshotManifest& manifest, const CloneRequest& request);

// Pure: one clone named `name` publishing `host_ports` (every host port
// filled in), with `seed`'s identity.
[[nodiscard]] absl::StatusOr<Launch> PlanClone(
    const SnapshotManifest& manifest, const std::string& snapshot_dir,
    const std::string& name, MemoryBackend memory, bool detach,
    const std::string& state_root, const LaunchSeeds& seed,
    const std::vector<PublishedPort>& host_ports);

// Pure. `seeds[i]` and `host_ports[i]` (ClonePorts(i) with every host
// port filled in) are clone i's.
[[nodiscard]] absl::StatusOr<std::vector<Launch>> PlanClones(
    const SnapshotManifest& manifest, const std::string& snapshot_dir,
    const CloneRequest& request, const std::string& state_root,
    const std::vector<LaunchSeeds>& seeds,
    const std::vector<std::vector<PublishedPort>>& host_ports);

// Reads and checks the snapshot, plans the clones and runs them (run.h:
// each prints its name once ready with -d). The exit code: 0 when every
// clone is ready (or, in the foreground, the clone's container's).
int CloneVms(StateStore& store, const SnapshotStore& snapshots,
             const CloneRequest& request,
             const std::vector<std::string>& holder_argv);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_CLONE_H_
