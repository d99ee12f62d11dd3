#include "rootfs/init/disk.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include "base/eintr.h"
#include "base/status.h"

namespace fcvm::init {

[[nodiscard]] absl::StatusOr<DiskContent> ProbeDisk(int fd) {
  // Partition tables, LUKS, other filesystems and the ext superblock (at
  // 1024) all live in the first 64 KiB.
  std::string head(64 * 1024, '\0');
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = RetryEintr(
        [&] { return pread(fd, head.data() + got, head.size() - got, got); });
    if (n < 0) return ErrnoStatus("reading the writable disk");
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  // ext2/3/4: s_magic 0xEF53 (little endian) at 1024 + 56.
  if (head.size() >= 1024 + 58 && static_cast<uint8_t>(head[1080]) == 0x53 &&
      static_cast<uint8_t>(head[1081]) == 0xEF) {
    return DiskContent::kExt;
  }
  if (std::all_of(head.begin(), head.end(), [](char c) { return c == 0; }))
    return DiskContent::kBlank;
  return DiskContent::kOther;
}

}  // namespace fcvm::init
