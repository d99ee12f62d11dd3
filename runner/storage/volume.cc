#include "runner/storage/volume.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/subprocess.h"

namespace fcvm::runner {
namespace {

struct TreeSize {
  uint64_t bytes = 0;    // Data, rounded up to 4 KiB blocks.
  uint64_t entries = 0;  // Files, directories, links: one inode each.
};

// What a copy of `root` needs: symlinks are not followed (they are copied
// as links), every entry takes an inode.
[[nodiscard]] absl::StatusOr<TreeSize> MeasureTree(const std::string& root) {
  TreeSize size;
  std::error_code error;
  std::filesystem::recursive_directory_iterator it(
      root, std::filesystem::directory_options::none, error);
  for (; !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    ++size.entries;
    const std::filesystem::file_status status = it->symlink_status(error);
    if (error) break;
    if (std::filesystem::is_regular_file(status)) {
      const uint64_t bytes = it->file_size(error);
      if (error) break;
      size.bytes += (bytes + 4095) / 4096 * 4096;
    } else if (std::filesystem::is_directory(status)) {
      size.bytes += 4096;
    }
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("reading ", root, ": ", error.message()));
  }
  return size;
}

}  // namespace

[[nodiscard]] absl::Status MakeDirectoryImage(const std::string& dir,
                                              const std::string& image) {
  const std::string what = absl::StrCat("volume ", dir);
  ASSIGN_OR_RETURN(TreeSize tree, Annotate(MeasureTree(dir), what));
  // An inode for every entry (mke2fs would size the inode table by bytes,
  // 16 KiB each above 512 MiB, and a tree of many small files, node_modules,
  // then fails with "Could not allocate inode"), with slack; room for the
  // inode table and ext4's own structures; whole MiB.
  const uint64_t inodes = tree.entries + tree.entries / 8 + 64;
  const uint64_t mib = ((tree.bytes * 5 / 4 + inodes * 256) >> 20) + 16;
  SubprocessOptions mke2fs;
  // mke2fs is in /usr/sbin: base/subprocess finds it there whatever PATH
  // says (a normal user's has no /usr/sbin).
  mke2fs.argv = {"mke2fs",
                 "-q",
                 "-F",
                 "-t",
                 "ext4",
                 "-N",
                 absl::StrCat(inodes),
                 "-d",
                 dir,
                 "-L",
                 "fcvm-volume",
                 image,
                 absl::StrCat(mib, "M")};
  mke2fs.stdout_mode = StdioMode::kPipe;
  mke2fs.stderr_mode = StdioMode::kPipe;
  // Time enough to copy the data at a slow disk's 20 MB/s, and a minute.
  const absl::Duration limit =
      absl::Minutes(1) + absl::Seconds(static_cast<int64_t>(tree.bytes / 20e6));
  absl::StatusOr<Subprocess::Output> out = RunCommand(mke2fs, limit);
  if (!out.ok()) {
    unlink(image.c_str());
    return Annotate(out.status(),
                    absl::StrCat(what, ": copying it into ", image));
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner
