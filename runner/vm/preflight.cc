#include "runner/vm/preflight.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "runner/net/nft.h"
#include "runner/state/state_store.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner {

PreflightReport RunPreflight(const FactsRequest& request) {
  PreflightFacts facts;
  // What `run` would gather for a default run (auto backend and accel);
  // without a kernel, no VMM-level probe (it boots the kernel).
  RunFlags flags;
  flags.image = "preflight";
  facts.have_kernel = !request.assets.kernel.empty();
  absl::StatusOr<HostFacts> host = GatherHostFacts(flags, request);
  if (host.ok()) {
    facts.host = *host;
  } else {
    facts.gathered = host.status();
  }
  facts.direct = ProbeKvmDirectly();
  facts.tun = access("/dev/net/tun", R_OK | W_OK) == 0;
  facts.nftables = net::CheckNftables();
  facts.user_namespaces = std::string(absl::StripAsciiWhitespace(
      ReadFile("/proc/sys/user/max_user_namespaces").value_or("0")));
  facts.root = geteuid() == 0;
  facts.state_root = request.state_root;
  facts.state = EnsurePrivateDir(request.state_root);
  facts.nft = FindProgram("nft").ok();
  facts.assets = request.assets.source;
  facts.have_assets =
      !request.assets.kernel.empty() && !request.assets.rootfs.empty();
  return DescribePreflight(facts);
}

PreflightReport DescribePreflight(const PreflightFacts& facts) {
  PreflightReport report;
  auto line = [&](bool ok, std::string what, std::string detail) {
    report.lines.push_back({ok, std::move(what), std::move(detail)});
  };
  const HostFacts& host = facts.host;
  if (!facts.gathered.ok()) {
    line(false, "host", std::string(facts.gathered.message()));
  }
  auto missing = [&](const char* package) {
    report.missing_packages.push_back(package);
    return absl::StrCat("not installed (Debian package ", package, ")");
  };
  line(facts.have_assets, "guest assets",
       facts.assets.empty() ? "none found" : facts.assets);
  const std::string qemu = absl::StrCat("qemu-system-", host.guest_arch);
  line(host.qemu, qemu,
       host.qemu ? "installed"
                 : missing(host.guest_arch == "aarch64" ? "qemu-system-arm"
                                                        : "qemu-system-x86"));
  line(!host.firecracker.empty(), "firecracker",
       host.firecracker.empty() ? "not installed" : host.firecracker);
  line(facts.direct.works, "KVM (direct probe)", facts.direct.why);
  if (facts.have_kernel) {
    if (host.qemu)
      line(host.kvm_qemu.works, "KVM under QEMU", host.kvm_qemu.why);
    if (!host.firecracker.empty()) {
      line(host.kvm_firecracker.works, "KVM under Firecracker",
           host.kvm_firecracker.why);
    }
  } else {
    line(false, "guest kernel", "none given (--kernel): VMM probes skipped");
  }
  line(facts.tun, "/dev/net/tun",
       facts.tun ? "TAP devices possible" : "no TAP devices");
  line(facts.nftables.ok(), "libnftables",
       facts.nftables.ok()
           ? "can make tables here (privileged TAP networking)"
           : absl::StrCat(facts.nftables.message(),
                          " (rootless modes make theirs in the VM's own "
                          "namespace)"));
  line(facts.user_namespaces != "0", "user namespaces",
       absl::StrCat("max ", facts.user_namespaces));
  line(host.pasta || host.slirp4netns, "pasta / slirp4netns",
       host.pasta         ? "rootless TAP networking through pasta"
       : host.slirp4netns ? "rootless TAP networking through slirp4netns"
                          : missing("passt"));
  line(facts.nft, "nft", facts.nft ? "installed" : missing("nftables"));
  line(facts.root, "root",
       facts.root ? "privileged networking possible"
                  : "rootless networking only");
  line(
      facts.state.ok(), "state directory",
      facts.state.ok() ? facts.state_root : std::string(facts.state.message()));
  // Firecracker needs KVM that runs a guest (asked of Firecracker itself
  // when there is a kernel to boot) and a TAP: root's or a rootless one.
  const bool firecracker =
      !host.firecracker.empty() &&
      (facts.have_kernel ? host.kvm_firecracker.works : facts.direct.works) &&
      (facts.root || host.pasta || host.slirp4netns);
  report.usable = host.qemu || firecracker;
  return report;
}

}  // namespace fcvm::runner
