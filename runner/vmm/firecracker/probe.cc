#include "runner/vmm/firecracker/probe.h"

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/subprocess.h"
#include "runner/vmm/firecracker/api.pb.h"
#include "runner/vmm/firecracker/client.h"
#include "runner/vmm/firecracker/requests.h"

namespace fcvm::runner::firecracker {
namespace {

// Reads `vmm`'s stdout until "Kernel panic", its end, or `deadline`.
bool SawPanic(Subprocess& vmm, absl::Time deadline) {
  std::string console;
  for (;;) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return false;
    pollfd pfd = {vmm.stdout_pipe().get(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(pfd.fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    console.append(buffer, n);
    if (absl::StrContains(console, "Kernel panic")) return true;
    if (console.size() > (1 << 20)) console.erase(0, console.size() - 4096);
  }
}

}  // namespace

VmmProbeResult ProbeKvmWithFirecracker(const std::string& binary,
                                       const std::string& arch,
                                       const std::string& kernel,
                                       const std::string& scratch_dir,
                                       absl::Duration timeout) {
  if (!InPath(binary)) {
    return {{false, absl::StrCat("no ", binary, " to probe KVM with")},
            /*cacheable=*/false};
  }
  std::string dir = absl::StrCat(scratch_dir.empty() ? "/tmp" : scratch_dir,
                                 "/fc-probe.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return {{false, absl::StrCat("broken: mkdtemp ", dir)}, false};
  }
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } remove{dir};
  const std::string api = absl::StrCat(dir, "/api.sock");
  SubprocessOptions options;
  options.argv = {binary, "--api-sock", api, "--id", "kvm-probe"};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kNull;
  absl::StatusOr<Subprocess> vmm = Subprocess::Start(std::move(options));
  if (!vmm.ok()) {
    return {{false, absl::StrCat("broken: ", vmm.status().message())}, false};
  }
  const absl::Time deadline = absl::Now() + timeout;
  ApiClient client(api);
  MachineConfiguration machine;
  machine.set_vcpu_count(1);
  machine.set_mem_size_mib(128);
  BootSource boot;
  boot.set_kernel_image_path(kernel);
  boot.set_boot_args(
      absl::StrCat(PlatformBootArgs(arch), " root=/dev/fcvm-none"));
  absl::Status configured = client.WaitReady(absl::Seconds(5));
  if (configured.ok()) {
    configured =
        client.Send({"PUT", "/machine-config", ToJson(machine)}).status();
  }
  if (configured.ok()) {
    configured = client.Send({"PUT", "/boot-source", ToJson(boot)}).status();
  }
  if (configured.ok()) configured = client.Send(StartRequest()).status();
  if (!configured.ok()) {
    (void)vmm->Kill();
    return {
        {false, absl::StrCat("broken: Firecracker: ", configured.message())}};
  }
  const bool panicked = SawPanic(*vmm, deadline);
  (void)vmm->Kill();
  if (panicked) {
    return {{true,
             "works: Firecracker booted the kernel to its expected "
             "panic"}};
  }
  return {{false, absl::StrCat("broken: Firecracker did not boot the kernel to "
                               "its panic within ",
                               absl::FormatDuration(timeout))}};
}

}  // namespace fcvm::runner::firecracker
