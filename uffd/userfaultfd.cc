#include "uffd/userfaultfd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace fcvm::uffd {
ResolveResult ResolveResultOf(int rc, int error, int64_t done,
                              uint64_t length) {
  ResolveResult result;
  if (rc == 0) {
    result.bytes = length;
    return result;
  }
  result.error = error;
  result.bytes = done > 0 ? std::min<uint64_t>(done, length) : 0;
  switch (error) {
    case EEXIST:
      result.kind = ResolveResult::kExists;
      break;
    case EAGAIN:
      result.kind = ResolveResult::kAgain;
      break;
    case ESRCH:
    case EFAULT:
      result.kind = ResolveResult::kGone;
      break;
    default:
      result.kind = ResolveResult::kInvalid;
  }
  return result;
}

[[nodiscard]] absl::StatusOr<UniqueFd> CreateUserfaultfd(uint64_t features) {
  // /dev/userfaultfd (Linux 6.1+) is governed by its file mode; the syscall
  // by vm.unprivileged_userfaultfd. Either will do.
  UniqueFd fd;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    fd.reset(ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK));
    close(dev);
  }
  if (!fd) {
    fd.reset(
        static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  }
  if (!fd) {
    return ErrnoStatus(
        "userfaultfd (neither /dev/userfaultfd nor the syscall is allowed: "
        "see vm.unprivileged_userfaultfd)");
  }
  uffdio_api api = {};
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd.get(), UFFDIO_API, &api) != 0) {
    return ErrnoStatus(
        absl::StrCat("UFFDIO_API with features 0x", absl::Hex(features)));
  }
  if ((api.features & features) != features) {
    return absl::UnimplementedError(absl::StrCat(
        "userfaultfd lacks features 0x", absl::Hex(features & ~api.features)));
  }
  return fd;
}

[[nodiscard]] absl::Status RegisterMissing(int uffd, void* address,
                                           size_t length) {
  uffdio_register reg = {};
  reg.range.start = reinterpret_cast<uint64_t>(address);
  reg.range.len = length;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    return ErrnoStatus(absl::StrCat("UFFDIO_REGISTER of ", length,
                                    " bytes at 0x",
                                    absl::Hex(reg.range.start)));
  }
  return absl::OkStatus();
}

ResolveResult Copy(int uffd, uint64_t address, const void* source,
                   uint64_t length, bool wake) {
  uffdio_copy copy = {};
  copy.dst = address;
  copy.src = reinterpret_cast<uint64_t>(source);
  copy.len = length;
  copy.mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE;
  const int rc = ioctl(uffd, UFFDIO_COPY, &copy);
  return ResolveResultOf(rc, rc == 0 ? 0 : errno, copy.copy, length);
}

ResolveResult ZeroPages(int uffd, uint64_t address, uint64_t length) {
  uffdio_zeropage zero = {};
  zero.range.start = address;
  zero.range.len = length;
  const int rc = ioctl(uffd, UFFDIO_ZEROPAGE, &zero);
  return ResolveResultOf(rc, rc == 0 ? 0 : errno, zero.zeropage, length);
}

[[nodiscard]] absl::Status Wake(int uffd, uint64_t address, uint64_t length) {
  uffdio_range range = {address, length};
  if (ioctl(uffd, UFFDIO_WAKE, &range) != 0) {
    return ErrnoStatus("UFFDIO_WAKE");
  }
  return absl::OkStatus();
}

}  // namespace fcvm::uffd
