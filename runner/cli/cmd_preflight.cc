// fcvm preflight: what this machine can run, and why not.
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/subprocess.h"
#include "runner/cli/cli.h"
#include "runner/net/rootless.h"
#include "runner/vmm/qemu/backend.h"

namespace fcvm::runner {
namespace {}  // namespace

int PreflightCommand(Cli& cli, const std::vector<std::string>& args) {
  if (!args.empty()) return Complain(2, "preflight takes no arguments");
  int usable = 0;
  auto line = [](bool ok, const std::string& what, const std::string& detail) {
    std::printf("%-4s %-26s %s\n", ok ? "ok" : "--", what.c_str(),
                detail.c_str());
  };
  const std::string qemu = absl::StrCat("qemu-system-", cli.arch);
  const bool have_qemu = InPath(qemu);
  line(have_qemu, qemu, have_qemu ? "in PATH" : "not installed");
  usable += have_qemu;
  const bool have_fc = InPath("firecracker");
  line(have_fc, "firecracker", have_fc ? "in PATH" : "not installed");
  const bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;
  line(kvm, "/dev/kvm", kvm ? "accessible" : "absent or not accessible");
  if (have_qemu && !cli.kernel.empty()) {
    std::string why;
    const std::string accel =
        qemu::ChooseAccel("auto", cli.arch, cli.kernel, cli.store.root(), &why);
    line(accel == "kvm", "KVM runs a guest", why);
  }
  const bool tun = access("/dev/net/tun", R_OK | W_OK) == 0;
  line(tun, "/dev/net/tun", tun ? "TAP devices possible" : "no TAP devices");
  line(InPath("nft"), "nft", "nftables, for TAP networking's rules");
  absl::StatusOr<std::string> helper = net::ChooseRootlessHelper("auto");
  line(helper.ok(), "pasta / slirp4netns",
       helper.ok() ? absl::StrCat("rootless TAP networking through ", *helper)
                   : std::string(helper.status().message()));
  line(geteuid() == 0, "root",
       geteuid() == 0 ? "privileged networking possible"
                      : "rootless networking only");
  std::printf("state directory: %s\n", cli.store.root().c_str());
  return usable > 0 ? 0 : 1;
}

}  // namespace fcvm::runner
