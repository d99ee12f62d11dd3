#include "runner/snapshot/clone.h"

#include <cstdio>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/free_port.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/net/tap_network.h"
#include "runner/snapshot/machine.h"
#include "runner/snapshot/memory_server.h"
#include "runner/vm/host_facts.h"
#include "runner/vm/remove.h"
#include "runner/vm/run.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {
namespace {

int Say(int code, const std::string& message) {
  std::fprintf(stderr, "fcvm: %s\n", message.c_str());
  return code;
}

}  // namespace

// Host ports for every clone, none twice (a port found free is not bound
// until QEMU starts, so two clones could otherwise be given the same).
[[nodiscard]] absl::StatusOr<std::vector<std::vector<PublishedPort>>>
ChooseHostPorts(const SnapshotManifest& manifest, const CloneRequest& request) {
  std::vector<std::vector<PublishedPort>> all;
  std::set<uint32_t> taken;
  for (int i = 0; i < request.count; ++i) {
    std::vector<PublishedPort> ports = ClonePorts(manifest, request, i);
    for (PublishedPort& port : ports) {
      if (port.host_port() != 0) {
        if (!taken.insert(port.host_port()).second) {
          return absl::InvalidArgumentError(absl::StrCat(
              "host port ", port.host_port(), " is published twice"));
        }
        continue;
      }
      for (int attempt = 0; port.host_port() == 0; ++attempt) {
        if (attempt == 100) {
          return absl::ResourceExhaustedError("no free port on 127.0.0.1");
        }
        ASSIGN_OR_RETURN(uint16_t free,
                         FreeLoopbackPort(0, port.protocol() == "udp"));
        if (taken.insert(free).second) port.set_host_port(free);
      }
    }
    all.push_back(std::move(ports));
  }
  return all;
}

std::vector<PublishedPort> ClonePorts(const SnapshotManifest& manifest,
                                      const CloneRequest& request, int index) {
  std::vector<PublishedPort> ports;
  if (request.ports.empty()) {
    for (PublishedPort port : manifest.source().ports()) {
      port.set_host_port(0);
      ports.push_back(port);
    }
    return ports;
  }
  for (PublishedPort port : request.ports) {
    if (port.host_port() != 0) port.set_host_port(port.host_port() + index);
    ports.push_back(port);
  }
  return ports;
}

[[nodiscard]] absl::StatusOr<Launch> PlanClone(
    const SnapshotManifest& manifest, const std::string& snapshot_dir,
    const std::string& name, MemoryBackend memory, bool detach,
    const std::string& state_root, const LaunchSeeds& seed,
    const std::vector<PublishedPort>& host_ports) {
  const std::string what =
      absl::StrCat("clone of snapshot '", manifest.tag(), "'");
  const VmState& source = manifest.source();
  const bool qemu = source.backend() == "qemu";
  if (!qemu && source.backend() != "firecracker") {
    return absl::UnimplementedError(
        absl::StrCat(what, ": restoring a '", source.backend(), "' snapshot"));
  }
  const bool uffd = memory == MemoryBackend::kUffd;
  if (uffd && qemu) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": --mem-backend uffd serves Firecracker; QEMU clones map the "
        "snapshot's memory file (--mem-backend file)"));
  }
  const std::string mode = source.network().mode();
  // tap, pasta, slirp4netns: a TAP (in a namespace of its own for the
  // rootless two), given to each clone afresh.
  const bool tap = net::UsesTap(mode);
  if (mode != "user" && mode != "none" && !tap) {
    return absl::UnimplementedError(
        absl::StrCat(what, ": its VM ran on a '", mode, "' network"));
  }
  if (source.volumes_size() > 0) {
    return absl::UnimplementedError(
        absl::StrCat(what, ": its VM had volumes (-v): not implemented yet"));
  }
  Launch launch;
  launch.detach = detach;
  launch.disk_template = absl::StrCat(snapshot_dir, "/", kSnapshotDisk);
  launch.restore = RestoreSource{snapshot_dir, memory, ""};
  VmState& state = launch.state;
  state = source;
  state.set_name(name);
  RETURN_IF_ERROR(ValidateVmName(state.name()));
  const std::string dir = absl::StrCat(state_root, "/vms/", state.name());
  state.set_id(seed.id);
  state.set_phase(VmState::CREATING);
  state.clear_dir();
  state.clear_phases();
  state.clear_error();
  state.clear_exit_code();
  state.clear_ended_unix_ms();
  state.clear_vmm_pid();
  state.clear_vmm_start_ticks();
  state.clear_supervisor_pid();
  state.clear_supervisor_start_ticks();
  state.clear_generation();
  state.clear_cache();
  state.mutable_network()->clear_holder_pid();
  state.mutable_network()->clear_holder_start_ticks();
  state.mutable_network()->clear_helper_pid();
  state.mutable_network()->clear_helper_start_ticks();
  state.set_created_unix_ms(seed.now_unix_ms);
  state.set_disk(absl::StrCat(dir, "/disk.img"));
  RestoredFrom& from = *state.mutable_restored_from();
  from.set_snapshot(manifest.tag());
  from.set_memory_backend(uffd ? "uffd" : "file");

  VmSpec& spec = *state.mutable_spec();
  spec.set_name(state.name());
  spec.clear_netns_pid();
  if (tap) {
    // A TAP of its own, a subnet of its own (CreateVm chooses it under
    // the store's lock): the agent moves the guest to its new address
    // and MAC when it re-identifies. The NIC itself is the snapshot's.
    NetworkState fresh;
    fresh.set_mode(mode);
    *fresh.mutable_dns() = source.network().dns();
    *state.mutable_network() = fresh;
    spec.clear_nics();
    spec.mutable_plan()->clear_network();
  }
  for (Disk& disk : *spec.mutable_disks()) {
    if (disk.path() == source.disk()) disk.set_path(state.disk());
  }
  state.clear_ports();
  for (const PublishedPort& port : host_ports) *state.add_ports() = port;
  for (Nic& nic : *spec.mutable_nics()) {
    if (!nic.has_user()) continue;
    nic.mutable_user()->clear_forwards();
    for (const PublishedPort& port : host_ports) {
      *nic.mutable_user()->add_forwards() = port;
    }
  }
  agent::Plan& plan = *spec.mutable_plan();
  plan.clear_ports();
  for (const PublishedPort& port : host_ports) {
    *plan.add_ports() = ToPlanPort(port);
  }
  // A new generation: the agent applies it when told it was restored.
  plan.set_generation(manifest.generation() + 1);
  plan.set_hostname(state.name());
  plan.set_machine_id(seed.machine_id);
  plan.set_entropy(seed.entropy);
  plan.set_host_time_unix_ms(static_cast<uint64_t>(seed.now_unix_ms));
  RETURN_IF_ERROR(CheckPlan(state));
  if (!qemu) return launch;
  // QEMU's fw_cfg: the clone's plan must pad to its snapshot's size (the
  // size the guest's fw_cfg kept for the plan it booted with).
  std::string source_json, clone_json;
  (void)google::protobuf::util::MessageToJsonString(source.spec().plan(),
                                                    &source_json);
  (void)google::protobuf::util::MessageToJsonString(plan, &clone_json);
  if (qemu::PaddedPlanSize(clone_json.size()) !=
      qemu::PaddedPlanSize(source_json.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": clone '", state.name(), "''s plan is ", clone_json.size(),
        " bytes and its snapshot's ", source_json.size(),
        ": under QEMU they must fit the same 4 KiB block (the guest's "
        "fw_cfg keeps the size it booted with); a shorter --name or fewer "
        "-p ports"));
  }
  return launch;
}

[[nodiscard]] absl::StatusOr<std::vector<Launch>> PlanClones(
    const SnapshotManifest& manifest, const std::string& snapshot_dir,
    const CloneRequest& request, const std::string& state_root,
    const std::vector<LaunchSeeds>& seeds,
    const std::vector<std::vector<PublishedPort>>& host_ports) {
  if (request.count < 1 || request.count > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--count ", request.count, ": 1 to 1000"));
  }
  if (static_cast<int>(seeds.size()) != request.count ||
      static_cast<int>(host_ports.size()) != request.count) {
    return absl::InternalError("clone seeds or ports are incomplete");
  }
  const std::string prefix =
      request.prefix.empty() ? manifest.tag() : request.prefix;
  std::vector<Launch> launches;
  for (int i = 0; i < request.count; ++i) {
    ASSIGN_OR_RETURN(
        Launch launch,
        PlanClone(manifest, snapshot_dir, absl::StrCat(prefix, "-", i + 1),
                  request.memory, request.detach, state_root, seeds[i],
                  host_ports[i]));
    launches.push_back(std::move(launch));
  }
  return launches;
}

int CloneVms(StateStore& store, const SnapshotStore& snapshots,
             const CloneRequest& request,
             const std::vector<std::string>& holder_argv) {
  absl::StatusOr<SnapshotManifest> manifest = snapshots.Read(request.tag);
  if (!manifest.ok()) {
    if (absl::IsNotFound(manifest.status()) && store.Read(request.tag).ok()) {
      return Say(1, absl::StrCat("'", request.tag,
                                 "' is a VM, not a snapshot: fcvm snapshot "
                                 "create ",
                                 request.tag, " --tag TAG, then clone TAG"));
    }
    return Say(1, std::string(manifest.status().message()));
  }
  const std::string dir = snapshots.TagDir(request.tag);
  if (absl::Status ok = CheckRestorable(*manifest, ObserveHost(*manifest, dir));
      !ok.ok()) {
    return Say(1, std::string(ok.message()));
  }
  std::vector<LaunchSeeds> seeds;
  for (int i = 0; i < request.count; ++i) {
    absl::StatusOr<LaunchSeeds> seed = DrawSeeds();
    if (!seed.ok()) return Say(1, std::string(seed.status().message()));
    seeds.push_back(*seed);
  }
  absl::StatusOr<std::vector<std::vector<PublishedPort>>> ports =
      ChooseHostPorts(*manifest, request);
  if (!ports.ok()) return Say(1, std::string(ports.status().message()));
  absl::StatusOr<std::vector<Launch>> launches =
      PlanClones(*manifest, dir, request, store.root(), seeds, *ports);
  if (!launches.ok()) return Say(1, std::string(launches.status().message()));
  // Every name free before any clone is made: a failure below then only
  // ever concerns clones this command made.
  for (const Launch& launch : *launches) {
    if (store.Read(launch.state.name()).ok()) {
      return Say(1, absl::StrCat("a VM named '", launch.state.name(),
                                 "' exists (--name PREFIX)"));
    }
  }
  int code = 0;
  // A clone of ours that failed (a damaged snapshot, a port taken) never
  // ran a container of its own: it goes, its error said. Its owner is gone
  // by then (RemoveVm refuses a live one).
  auto failed = [&](const std::string& name, int one) {
    if (code == 0) code = one;
    if (store.Read(name).ok()) (void)RemoveVm(store, name, /*force=*/false);
  };
  // --mem-backend uffd: the snapshot's one memory server, running before
  // any clone restores; its start lock held until every clone exists, so
  // it cannot judge itself unused in between (memory_server.h).
  std::shared_ptr<UniqueFd> server_lock;
  if (request.memory == MemoryBackend::kUffd) {
    absl::StatusOr<EnsuredServer> server =
        EnsureMemoryServer(store.root(), request.tag, request.fcvm_argv);
    if (!server.ok()) return Say(1, std::string(server.status().message()));
    if (server->started) {
      std::fprintf(stderr, "fcvm: memory server of '%s' started on %s\n",
                   request.tag.c_str(), server->socket.c_str());
    }
    server_lock = std::make_shared<UniqueFd>(std::move(server->start_lock));
    for (Launch& launch : *launches) {
      launch.restore->uffd_socket = server->socket;
    }
    // In the foreground, released once the one clone exists; detached,
    // after all of them (each detached supervisor closes its copy).
    if (!request.detach) {
      launches->front().created = [server_lock] { server_lock->reset(); };
    }
  }
  if (!request.detach) {
    return RunVm(store, std::move(launches->front()), holder_argv);
  }
  // Every clone's supervisor starts before any is awaited: they restore
  // side by side.
  std::vector<StartedRun> started;
  for (Launch& launch : *launches) {
    const std::string name = launch.state.name();
    absl::StatusOr<StartedRun> run =
        StartDetachedRun(store, std::move(launch), holder_argv);
    if (!run.ok()) {
      Say(1, std::string(run.status().message()));
      failed(name, 1);
      break;
    }
    started.push_back(std::move(*run));
  }
  if (server_lock) server_lock->reset();
  // One deadline for the fleet, not one per clone.
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  for (StartedRun& run : started) {
    const int one = AwaitDetachedRun(store, run, deadline);
    if (one != 0) failed(run.state.name(), one);
  }
  return code;
}

}  // namespace fcvm::runner
