#ifndef FCVM_RUNNER_STATE_STATE_STORE_H_
#define FCVM_RUNNER_STATE_STATE_STORE_H_

// One directory per VM under a state root, each with a protobuf state file
// replaced atomically (readers see the old or the new state, never a mix)
// and a lease (runner/state/lease.h) held by the VM's one owner. Writers
// serialise on a per-VM lock (flock), readers (`ls`) take no lock at all.
//
// The root and its vms/ folder must be directories of the calling user
// with no access for anyone else, and not symlinks: another local user who
// made /tmp/fcvm-<uid> first could otherwise read plans (environment,
// entropy) or plant state that `stop` would act on. Every call checks.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runner/state/lease.h"
#include "runner/state/state.pb.h"

namespace fcvm::runner {

// A VM name: 1 to 40 of [a-z0-9-], starting with a letter or a digit and
// not ending with '-'. It is the guest's hostname too (RFC 1123 label
// rules, as the agent checks them), and names directories.
[[nodiscard]] absl::Status ValidateVmName(const std::string& name);

// `path` as a private directory of the caller: created (0700) if missing;
// otherwise it must be a real directory (not a symlink) owned by the
// caller with no group or other permissions. The error says which and
// what to do.
[[nodiscard]] absl::Status EnsurePrivateDir(const std::string& path);

// One directory under vms/: its state, or why it cannot be read.
struct StoreEntry {
  std::string name;
  std::string dir;
  absl::StatusOr<VmState> state;
};

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}

  // --state_dir, else $FCVM_STATE_DIR, else /run/fcvm for root and
  // $XDG_RUNTIME_DIR/fcvm (or /tmp/fcvm-<uid>) for everyone else.
  static std::string DefaultRoot();

  const std::string& root() const { return root_; }
  std::string VmDir(const std::string& name) const;

  // Claims `state.name()` and writes the state, in one step nobody can see
  // half-done: the directory is built under a temporary name (lease taken,
  // state written) and renamed into place, failing with AlreadyExists
  // (naming the VM) if the name is taken. Sets state.dir. The lease is the
  // VM's from now on: hold it for as long as the VM is owned.
  [[nodiscard]] absl::StatusOr<Lease> Create(VmState& state);

  // Read-modify-write under the VM's lock. NotFound if there is no VM.
  [[nodiscard]] absl::StatusOr<VmState> Update(
      const std::string& name, const std::function<void(VmState&)>& change);
  [[nodiscard]] absl::StatusOr<VmState> Read(const std::string& name) const;

  // Every VM directory, sorted by name; a state that cannot be read comes
  // with the reason. Claims in progress (hidden names) are not listed.
  [[nodiscard]] absl::StatusOr<std::vector<StoreEntry>> List() const;

  // Deletes the VM's directory and everything in it. Only its owner may:
  // `lease` must be the VM's.
  [[nodiscard]] absl::Status Remove(const std::string& name,
                                    const Lease& lease);

  // Moves a VM directory nobody can account for (its state unreadable) to
  // <root>/quarantine/<name>.<unix ms>, disk and all, instead of deleting
  // it. Returns the new path. `lease` must be the directory's.
  [[nodiscard]] absl::StatusOr<std::string> Quarantine(const std::string& name,
                                                       const Lease& lease);

  // An exclusive lock on the whole store, for choices that must not
  // collide across VMs (subnets) and for gc's sweep; released when the fd
  // closes.
  [[nodiscard]] absl::StatusOr<UniqueFd> LockRoot();

 private:
  [[nodiscard]] absl::Status CheckRoot(bool create) const;
  // Read() once the name and the root have been checked.
  [[nodiscard]] absl::StatusOr<VmState> ReadChecked(
      const std::string& name) const;
  [[nodiscard]] absl::StatusOr<UniqueFd> Lock(const std::string& name) const;
  [[nodiscard]] absl::Status Write(const std::string& dir,
                                   const VmState& state) const;

  std::string root_;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_STATE_STATE_STORE_H_
