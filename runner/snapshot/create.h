#ifndef FCVM_RUNNER_SNAPSHOT_CREATE_H_
#define FCVM_RUNNER_SNAPSHOT_CREATE_H_

// `fcvm snapshot create VM`: the VM's owner (its supervisor) pauses it,
// has the VMM write its device state and freeze its memory into a new
// snapshot directory, copies its writable disk there (reflink, else holes
// kept), and resumes it (or stops it: --stop); then the manifest is
// written (the machine, the VMM's version, the inputs hashed, the sizes)
// and the snapshot published under its tag. On any failure the directory
// goes and the VM runs on.

#include <string>

#include "absl/status/statusor.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/state/state_store.h"

namespace fcvm::runner {

struct SnapshotRequest {
  std::string vm;
  std::string tag;  // Empty: <vm>-<n>.
  bool stop = false;
  // Recorded in the manifest: a startup-cache entry's key (runner/cache/),
  // a template's content key.
  CacheKey cache_key;
  std::string template_key;
};

[[nodiscard]] absl::StatusOr<SnapshotManifest> CreateSnapshot(
    const StateStore& vms, SnapshotStore& snapshots,
    const SnapshotRequest& request);

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_CREATE_H_
