#ifndef FCVM_RUNNER_SNAPSHOT_SNAPSHOT_STORE_H_
#define FCVM_RUNNER_SNAPSHOT_SNAPSHOT_STORE_H_

// Snapshots on disk: <state root>/snapshots/<tag>/ holds the device state
// (vmstate), the guest's memory (memory), the writable disk (disk) and
// manifest.json, written last. A snapshot is made in a private directory
// (.partial-<tag>-<random>) whose lease its maker holds, and published by
// renaming it to its tag (RENAME_NOREPLACE: two makers of one tag cannot
// both win); once published it never changes. A partial directory whose
// maker is gone is gc's to remove.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/snapshot/manifest.pb.h"
#include "runner/state/lease.h"

namespace fcvm::runner {

inline constexpr char kManifestFile[] = "manifest.json";

// Tags name directories and are the default prefix of clone names
// (<tag>-<n>): VM-name rules, at most 36 characters.
[[nodiscard]] absl::Status ValidateTag(const std::string& tag);

// A snapshot being made: its directory, not visible under its tag yet.
struct PendingSnapshot {
  std::string tag;
  std::string dir;
  Lease lease;
};

struct SnapshotEntry {
  std::string tag;
  std::string dir;
  absl::StatusOr<SnapshotManifest> manifest;
};

class SnapshotStore {
 public:
  explicit SnapshotStore(std::string state_root);
  // Snapshots kept in `dir` instead of <state root>/snapshots (the
  // startup cache's, runner/cache/).
  SnapshotStore(std::string state_root, std::string dir);

  const std::string& dir() const { return dir_; }
  std::string TagDir(const std::string& tag) const;

  // A private directory for a new snapshot of `tag`; AlreadyExists when
  // the tag is taken.
  [[nodiscard]] absl::StatusOr<PendingSnapshot> Begin(const std::string& tag);
  // Writes the manifest and publishes the directory under its tag.
  [[nodiscard]] absl::Status Publish(PendingSnapshot& pending,
                                     const SnapshotManifest& manifest);
  // Removes a pending snapshot that failed.
  void Abandon(PendingSnapshot& pending);

  // NotFound naming the tag (and saying it is not a VM if one has that
  // name is the caller's to add).
  [[nodiscard]] absl::StatusOr<SnapshotManifest> Read(
      const std::string& tag) const;
  // Published snapshots, by tag.
  [[nodiscard]] absl::StatusOr<std::vector<SnapshotEntry>> List() const;
  // Partial directories whose maker is gone.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Abandoned() const;
  // Removes one of those (a path Abandoned gave; refused otherwise).
  [[nodiscard]] absl::Status RemoveAbandoned(const std::string& dir);
  [[nodiscard]] absl::Status Remove(const std::string& tag);

  // A tag not taken yet: <vm>-1, <vm>-2, ...
  [[nodiscard]] absl::StatusOr<std::string> NextTag(
      const std::string& vm) const;

 private:
  std::string root_;
  std::string dir_;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_SNAPSHOT_SNAPSHOT_STORE_H_
