#ifndef FCVM_BASE_FILE_H_
#define FCVM_BASE_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm {

// Replaces `path` with `contents` so that every reader, and the file after a
// crash or power loss, sees either the old or the new contents, never a mix:
// writes a temporary file in the same directory, fsyncs it, renames it over
// `path` and fsyncs the directory. On error nothing is left behind and the old
// file is untouched.
// kUnsynced keeps the atomic rename (readers see old or new) but skips the
// fsyncs: for files that are rewritten at every start anyway.
enum class Durability { kSynced, kUnsynced };
[[nodiscard]] absl::Status WriteFileAtomically(
    const std::string& path, absl::string_view contents, mode_t mode = 0644,
    Durability durability = Durability::kSynced);

// The whole contents of the file at `path`.
[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path);

// Removes `path` and everything under it (symlinks themselves, never what
// they point to); a missing path is no error.
[[nodiscard]] absl::Status RemoveTree(const std::string& path);

}  // namespace fcvm

#endif  // FCVM_BASE_FILE_H_
