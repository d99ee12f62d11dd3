#ifndef FCVM_RUNNER_STATE_STATE_STORE_H_
#define FCVM_RUNNER_STATE_STATE_STORE_H_

// One directory per VM under a state root, each with a protobuf state file
// replaced atomically (readers see the old or the new state, never a mix).
// Writers serialise on a per-VM lock (flock), so concurrent `run`, `stop`
// and the supervisor never lose each other's changes; readers (`ls`) take no
// lock at all.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner {

// A VM name: 1 to 40 of [a-z0-9_-], starting with a letter or digit (it
// names TAP devices, nftables comments and directories).
absl::Status ValidateVmName(const std::string& name);

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}

  // --state_dir, else $FCVM_STATE_DIR, else /run/fcvm for root and
  // $XDG_RUNTIME_DIR/fcvm (or /tmp/fcvm-<uid>) for everyone else.
  static std::string DefaultRoot();

  const std::string& root() const { return root_; }
  std::string VmDir(const std::string& name) const;

  // Claims `state.name()` (the directory is created atomically: a second
  // `run --name` of the same name fails, naming it) and writes the state.
  absl::Status Create(VmState& state);
  // Read-modify-write under the VM's lock.
  absl::StatusOr<VmState> Update(const std::string& name,
                                 const std::function<void(VmState&)>& change);
  absl::StatusOr<VmState> Read(const std::string& name) const;
  // Every VM, sorted by name. A VM whose state cannot be read is listed with
  // only its name, phase FAILED and the reason in error.
  absl::StatusOr<std::vector<VmState>> List() const;
  // Deletes the VM's directory and everything in it.
  absl::Status Remove(const std::string& name);
  // An exclusive lock on the whole store, for choices that must not
  // collide across VMs (subnets); released when the fd closes.
  absl::StatusOr<UniqueFd> LockRoot();

 private:
  absl::StatusOr<UniqueFd> Lock(const std::string& name) const;
  absl::Status Write(const VmState& state) const;

  std::string root_;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STATE_STATE_STORE_H_
