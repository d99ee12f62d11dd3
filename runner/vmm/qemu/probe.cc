#include "runner/vmm/qemu/probe.h"

#include <poll.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/subprocess.h"
#include "runner/vmm/qemu/argv.h"

namespace fcvm::runner::qemu {

VmmProbeResult ProbeKvmWithQemu(const std::string& arch,
                                const std::string& kernel,
                                absl::Duration timeout) {
  const std::string binary = absl::StrCat("qemu-system-", arch);
  if (!InPath(binary)) {
    return {{false, absl::StrCat("no ", binary, " to probe KVM with")},
            /*cacheable=*/false};
  }
  VmSpec probe;
  probe.set_name("kvm-probe");
  probe.set_arch(arch);
  probe.set_kernel(kernel);
  probe.set_memory_mib(128);
  probe.set_vcpus(1);
  probe.set_boot_args("root=/dev/fcvm-none");
  Launch launch;
  launch.accel = "kvm";
  absl::StatusOr<std::vector<std::string>> argv = QemuArgv(probe, launch);
  if (!argv.ok()) {
    return {{false, std::string(argv.status().message())}, false};
  }
  SubprocessOptions options;
  options.argv = std::move(*argv);
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> qemu = Subprocess::Start(std::move(options));
  if (!qemu.ok()) {
    return {{false, absl::StrCat("broken: ", qemu.status().message())}, false};
  }
  // Read both streams as they come: a panic on the console means it works;
  // a KVM internal error leaves QEMU paused, not ended, so it is caught on
  // stderr at once rather than after the timeout.
  std::string out, err;
  const absl::Time deadline = absl::Now() + timeout;
  bool out_open = true, err_open = true;
  std::string verdict;
  bool works = false;
  while (verdict.empty() && (out_open || err_open)) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      verdict = absl::StrCat("broken: no kernel panic within ",
                             absl::FormatDuration(timeout));
      break;
    }
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({qemu->stdout_pipe().get(), POLLIN, 0});
    if (err_open) fds.push_back({qemu->stderr_pipe().get(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), static_cast<int>(left)) <= 0) continue;
    for (const pollfd& fd : fds) {
      if (fd.revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fd.fd, buffer, sizeof(buffer));
      const bool is_out = fd.fd == qemu->stdout_pipe().get();
      if (n <= 0) {
        (is_out ? out_open : err_open) = false;
        continue;
      }
      (is_out ? out : err).append(buffer, n);
    }
    if (absl::StrContains(out, "Kernel panic")) {
      works = true;
      verdict = "works: QEMU booted the kernel under KVM to its expected panic";
    } else if (absl::StrContains(err, "KVM internal error")) {
      verdict =
          "broken: QEMU under KVM: KVM internal error (the guest "
          "cannot run here)";
    }
  }
  (void)qemu->Kill();
  if (verdict.empty()) {
    // QEMU ended first: its first complaint, on one line.
    const std::string complaint = err.substr(0, err.find('\n'));
    verdict = absl::StrCat("broken: QEMU under KVM: ",
                           complaint.empty() ? "the kernel did not get far"
                                             : complaint.substr(0, 200));
  }
  return {{works, verdict}};
}

}  // namespace fcvm::runner::qemu
