#include "runner/net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/netconfig.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::runner::net {
namespace {

[[nodiscard]] absl::StatusOr<UniqueFd> AttachTap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TAP name '", name, "' must be 1 to ", IFNAMSIZ - 1, " characters"));
  }
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd("/dev/net/tun", O_RDWR | O_CLOEXEC));
  ifreq request = {};
  std::memcpy(request.ifr_name, name.data(), name.size());
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd.get(), TUNSETIFF, &request) != 0) {
    return ErrnoStatus(absl::StrCat("TAP ", name, " (TUNSETIFF)"));
  }
  return fd;
}

[[nodiscard]] absl::Status WriteSysctl(const std::string& path,
                                       const std::string& value) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY | O_CLOEXEC));
  return WriteAll(fd.get(), value, path);
}

}  // namespace

std::string TapName(const std::string& vm_id) {
  return absl::StrCat(kTapPrefix, vm_id.substr(0, 8));
}

// By ioctl, not /sys/class/net: sysfs shows the network namespace it was
// mounted in, not necessarily ours.
bool LinkExists(const std::string& name) {
  return if_nametoindex(name.c_str()) != 0;
}

[[nodiscard]] absl::Status CreateTap(const std::string& name,
                                     const std::string& host_cidr) {
  if (LinkExists(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("network device ", name, " exists already (fcvm gc?)"));
  }
  ASSIGN_OR_RETURN(UniqueFd fd, AttachTap(name));
  if (ioctl(fd.get(), TUNSETPERSIST, 1) != 0) {
    return ErrnoStatus(absl::StrCat("TAP ", name, " (TUNSETPERSIST)"));
  }
  fd.reset();
  absl::Status configured = agent::ReplaceIpv4Address(name, host_cidr);
  if (configured.ok()) {
    configured = WriteSysctl(
        absl::StrCat("/proc/sys/net/ipv4/conf/", name, "/route_localnet"), "1");
  }
  if (configured.ok()) configured = agent::SetLinkUp(name);
  if (configured.ok()) {
    configured = WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  }
  if (!configured.ok()) {
    (void)DeleteTap(name);
    return configured;
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status DeleteTap(const std::string& name) {
  if (!LinkExists(name)) return absl::OkStatus();
  // A VMM killed a moment ago may still be letting go (its process, or a
  // child of it, is exiting): busy is waited out for up to two seconds.
  absl::StatusOr<UniqueFd> fd = AttachTap(name);
  for (int i = 0; i < 200 && !fd.ok() &&
                  absl::StrContains(fd.status().message(), "busy");
       ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    fd = AttachTap(name);
  }
  if (!fd.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("deleting ", fd.status().message(),
                     absl::StrContains(fd.status().message(), "busy")
                         ? ": a VMM still holds it"
                         : ""));
  }
  if (ioctl(fd->get(), TUNSETPERSIST, 0) != 0) {
    return ErrnoStatus(absl::StrCat("TAP ", name, " (TUNSETPERSIST 0)"));
  }
  return absl::OkStatus();  // Gone when `fd` closes.
}

std::vector<std::string> ListTaps() {
  std::vector<std::string> taps;
  struct if_nameindex* all = if_nameindex();
  if (all == nullptr) return taps;
  for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
    if (absl::StartsWith(i->if_name, kTapPrefix)) taps.push_back(i->if_name);
  }
  if_freenameindex(all);
  std::sort(taps.begin(), taps.end());
  return taps;
}

}  // namespace fcvm::runner::net
