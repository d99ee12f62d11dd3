#include "runner/storage/volume.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/subprocess.h"

namespace fcvm::runner {
namespace {

uint64_t g_tree_bytes = 0;

int CountBytes(const char*, const struct stat* st, int type, struct FTW*) {
  // Data rounded to blocks, plus an inode's worth for every entry.
  g_tree_bytes += ((st->st_size + 4095) / 4096) * 4096 + 256;
  (void)type;
  return 0;
}

}  // namespace

absl::Status CheckVolume(const VolumeFlag& volume) {
  const std::string what =
      absl::StrCat("volume ", volume.host_path, ":", volume.guest_path);
  struct stat st;
  if (stat(volume.host_path.c_str(), &st) != 0) {
    return Annotate(ErrnoStatus(volume.host_path), what);
  }
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return absl::OkStatus();
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": not a directory, disk image file or block device"));
  }
  if (!volume.read_only) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": a directory is copied into the VM (a microVM has no shared "
        "filesystem), so what the container writes would never reach ",
        volume.host_path,
        "; mount it :ro, or give a disk image file for a writable volume"));
  }
  return absl::OkStatus();
}

absl::StatusOr<VolumeDrive> PrepareVolume(const VolumeFlag& volume, int index,
                                          const std::string& vm_dir) {
  RETURN_IF_ERROR(CheckVolume(volume));
  const std::string what =
      absl::StrCat("volume ", volume.host_path, ":", volume.guest_path);
  struct stat st;
  if (stat(volume.host_path.c_str(), &st) != 0) {
    return Annotate(ErrnoStatus(volume.host_path), what);
  }
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    return VolumeDrive{volume.host_path, volume.read_only,
                       S_ISREG(st.st_mode) ? "disk image" : "block device"};
  }
  g_tree_bytes = 0;
  if (nftw(volume.host_path.c_str(), CountBytes, 16, FTW_PHYS) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("reading ", volume.host_path)),
                    what);
  }
  // Room for ext4's own structures; whole MiB.
  const uint64_t mib = (g_tree_bytes * 5 / 4 >> 20) + 16;
  const std::string image = absl::StrCat(vm_dir, "/volume-", index, ".ext4");
  SubprocessOptions mke2fs;
  mke2fs.argv = {"mke2fs",
                 "-q",
                 "-F",
                 "-t",
                 "ext4",
                 "-d",
                 volume.host_path,
                 "-L",
                 "fcvm-volume",
                 image,
                 absl::StrCat(mib, "M")};
  mke2fs.stdout_mode = StdioMode::kPipe;
  mke2fs.stderr_mode = StdioMode::kPipe;
  ASSIGN_OR_RETURN(Subprocess process, Subprocess::Start(std::move(mke2fs)));
  ASSIGN_OR_RETURN(Subprocess::Output out,
                   process.Communicate("", absl::Minutes(5)));
  if (!out.exit.success()) {
    return absl::InternalError(absl::StrCat(
        what, ": mke2fs -d ", out.exit.ToString(), ": ", out.stderr_data));
  }
  return VolumeDrive{image, true, "copy of a directory"};
}

}  // namespace fcvm::runner
