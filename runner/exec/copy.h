#ifndef FCVM_RUNNER_EXEC_COPY_H_
#define FCVM_RUNNER_EXEC_COPY_H_

// Tar streams on the host for `fcvm cp`: a file or tree written as the
// archive `podman cp - CTR:DIR` unpacks, and the archive `podman cp
// CTR:PATH -` sends unpacked safely. Both stream in 64 KiB pieces (never a
// whole file in memory) through small byte interfaces, so a session's
// STDIN and STDOUT, a pipe or a test's string plug in alike.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fcvm::runner::exec {

// Where an archive's bytes go.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  [[nodiscard]] virtual absl::Status Write(absl::string_view bytes) = 0;
};

// Where an archive's bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // The next bytes; empty at the end. The view stays valid until the next
  // call.
  [[nodiscard]] virtual absl::StatusOr<absl::string_view> Read() = 0;
};

// Writes `src_path` (a file, a symlink, or a directory and everything
// under it) to `sink` as a tar archive (pax) whose one top entry is named
// `top_name`: modes, mtimes and numeric owners kept, symlinks as symlinks
// (never followed), hard links as separate files, sockets skipped (as GNU
// tar does).
[[nodiscard]] absl::Status WriteTar(const std::string& src_path,
                                    const std::string& top_name,
                                    ByteSink& sink);

// Unpacks the tar archive from `source` into the existing directory
// `dest_dir`: modes and mtimes kept, owners not (files are the caller's).
// Every entry must be `top_name` or under it, and is written as
// `rename_top_to` (if not empty) in its place. Refused, naming the entry:
// absolute paths, "..", paths through a symlink (in the archive or already
// in `dest_dir`), hard links to outside the top, a directory over an
// existing non-directory. An error leaves what was already unpacked.
// Changes the working directory while it runs (libarchive resolves entry
// paths against it): not for callers with threads that use relative paths.
[[nodiscard]] absl::Status ExtractTar(ByteSource& source,
                                      const std::string& dest_dir,
                                      const std::string& top_name,
                                      const std::string& rename_top_to = "");

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_COPY_H_
