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
  PreflightReport report;
  auto line = [&](bool ok, std::string what, std::string detail) {
    report.lines.push_back({ok, std::move(what), std::move(detail)});
  };
  // What `run` would gather for a default run (auto backend and accel).
  RunFlags flags;
  flags.image = "preflight";
  FactsRequest facts_request = request;
  facts_request.assets.kernel.clear();  // Checked below, not refused.
  absl::StatusOr<HostFacts> facts = GatherHostFacts(flags, facts_request);
  HostFacts host = facts.ok() ? *facts : HostFacts();
  const std::string qemu = absl::StrCat("qemu-system-", host.guest_arch);
  line(host.qemu, qemu, host.qemu ? "installed" : "not installed");
  line(!host.firecracker.empty(), "firecracker",
       host.firecracker.empty() ? "not installed" : host.firecracker);
  const KvmVerdict direct = ProbeKvmDirectly();
  line(direct.works, "KVM (direct probe)", direct.why);
  const bool have_kernel = !request.assets.kernel.empty();
  if (have_kernel) {
    // The VMM-level verdicts need the guest kernel; gathered again with it.
    facts_request.assets.kernel = request.assets.kernel;
    if (absl::StatusOr<HostFacts> with = GatherHostFacts(flags, facts_request);
        with.ok()) {
      host.kvm_qemu = with->kvm_qemu;
      host.kvm_firecracker = with->kvm_firecracker;
    }
    if (host.qemu)
      line(host.kvm_qemu.works, "KVM under QEMU", host.kvm_qemu.why);
    if (!host.firecracker.empty()) {
      line(host.kvm_firecracker.works, "KVM under Firecracker",
           host.kvm_firecracker.why);
    }
  } else {
    line(false, "guest kernel", "none given (--kernel): VMM probes skipped");
  }
  const bool tun = access("/dev/net/tun", R_OK | W_OK) == 0;
  line(tun, "/dev/net/tun", tun ? "TAP devices possible" : "no TAP devices");
  const absl::Status nft = net::CheckNftables();
  line(nft.ok(), "libnftables",
       nft.ok() ? "can make tables here (privileged TAP networking)"
                : absl::StrCat(nft.message(),
                               " (rootless modes make theirs in the VM's own "
                               "namespace)"));
  const std::string userns = std::string(absl::StripAsciiWhitespace(
      ReadFile("/proc/sys/user/max_user_namespaces").value_or("0")));
  line(userns != "0", "user namespaces", absl::StrCat("max ", userns));
  line(host.pasta || host.slirp4netns, "pasta / slirp4netns",
       host.pasta         ? "rootless TAP networking through pasta"
       : host.slirp4netns ? "rootless TAP networking through slirp4netns"
                          : "neither installed (Debian packages passt, "
                            "slirp4netns)");
  line(geteuid() == 0, "root",
       geteuid() == 0 ? "privileged networking possible"
                      : "rootless networking only");
  const absl::Status state = EnsurePrivateDir(request.state_root);
  line(state.ok(), "state directory",
       state.ok() ? request.state_root : std::string(state.message()));
  report.usable =
      host.qemu || (!host.firecracker.empty() &&
                    (have_kernel ? host.kvm_firecracker.works : direct.works));
  return report;
}

}  // namespace fcvm::runner
