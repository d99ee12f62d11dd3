#ifndef FCVM_RUNNER_SNAPSHOT_MEMORY_SERVER_H_
#define FCVM_RUNNER_SNAPSHOT_MEMORY_SERVER_H_

// The one userfaultfd memory server of a snapshot (uffd/server.h), for
// its Firecracker clones with --mem-backend uffd: `fcvm memory-server TAG`.
// Its place is <state root>/memory-servers/<tag>/:
//   lease       flock held by the running server (runner/state/lease.h):
//               whether a server lives is asked of the lock, never a pid;
//   start.lock  flock held while a server is started or judged unused;
//   uffd.sock   where Firecracker sends its handshake;
//   log         the server's own lines.
// `clone --mem-backend uffd` starts one on demand (EnsureMemoryServer) and
// holds start.lock until its clones exist; an on-demand server leaves once
// no VM is being served and no live clone of its tag uses uffd (judged
// under start.lock, so a clone being made keeps it), and gc clears what a
// killed one left (CollectMemoryServers).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/state/state_store.h"
#include "uffd/server.h"

namespace fcvm::runner {

struct MemoryServerPaths {
  std::string dir, start_lock, socket, log;
};
MemoryServerPaths MemoryServerPathsFor(const std::string& state_root,
                                       const std::string& tag);

// The live clones of `tag` restored with --mem-backend uffd.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> UffdClones(
    const StateStore& store, const std::string& tag);

// Runs the memory server of snapshot `tag` until a stop signal, or with
// `on_demand` until it is unused. AlreadyExists (naming the socket) if one
// runs already. `options`' memory file, socket and exit test are filled in
// here.
[[nodiscard]] absl::Status RunMemoryServer(const StateStore& store,
                                           const SnapshotStore& snapshots,
                                           const std::string& tag,
                                           bool on_demand,
                                           uffd::ServerOptions options);

struct EnsuredServer {
  std::string socket;
  UniqueFd start_lock;  // Held: release once the clones exist.
  bool started = false;  // This call started it.
};

// The memory server of `tag`, started (`fcvm_argv` + "memory-server TAG
// --on-demand", detached, its output in the log) if none runs, once it
// accepts connections.
[[nodiscard]] absl::StatusOr<EnsuredServer> EnsureMemoryServer(
    const std::string& state_root, const std::string& tag,
    const std::vector<std::string>& fcvm_argv,
    absl::Duration timeout = absl::Seconds(20));

// snapshot rm: the place of `tag`'s server, once no server lives there
// (an on-demand one leaves within a second of its last clone; waited for
// up to `timeout`). FailedPrecondition, naming it, if one still runs.
[[nodiscard]] absl::Status RemoveMemoryServerPlace(
    const std::string& state_root, const std::string& tag,
    absl::Duration timeout = absl::Seconds(5));

// gc: the directories of servers that are gone lose their stale socket;
// those of snapshots that are gone are removed. Returns what it removed.
std::vector<std::string> CollectMemoryServers(const SnapshotStore& snapshots,
                                              const std::string& state_root);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_MEMORY_SERVER_H_
