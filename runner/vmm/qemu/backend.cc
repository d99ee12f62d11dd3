#include "runner/vmm/qemu/backend.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "google/protobuf/util/json_util.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/qemu/qmp.h"

namespace fcvm::runner::qemu {

std::string QemuVmm::Describe() const {
  return absl::StrCat("qemu (", accel_, ")");
}

absl::StatusOr<Subprocess> QemuVmm::Start(const VmSpec& spec,
                                          const std::string& dir) {
  Launch launch;
  launch.accel = accel_;
  launch.console = "stdio";
  launch.qmp_socket = absl::StrCat(dir, "/qmp.sock");
  launch.plan_file = absl::StrCat(dir, "/plan.json");
  std::string plan;
  (void)google::protobuf::util::MessageToJsonString(spec.plan(), &plan);
  RETURN_IF_ERROR(WriteFileAtomically(launch.plan_file, plan, 0600));
  SubprocessOptions options;
  ASSIGN_OR_RETURN(std::vector<std::string> argv, QemuArgv(spec, launch));
  options.argv = VmmCommand(spec, std::move(argv));
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  return Subprocess::Start(std::move(options));
}

void QemuVmm::ForceStop(Subprocess& vmm, const std::string& dir) {
  absl::StatusOr<QmpClient> qmp =
      QmpClient::Connect(absl::StrCat(dir, "/qmp.sock"), absl::Seconds(2));
  if (qmp.ok() && qmp->Execute("quit", {}, absl::Seconds(2)).ok() &&
      vmm.Wait(absl::Seconds(5)).ok()) {
    return;
  }
  (void)vmm.Kill();
}

std::string ChooseAccel(const std::string& requested, const std::string& arch,
                        const std::string& kernel, const std::string& cache_dir,
                        std::string* why) {
  if (requested == "kvm" || requested == "tcg") {
    *why = "as requested";
    return requested;
  }
  struct utsname u;
  if (uname(&u) != 0 || arch != u.machine) {
    *why = absl::StrCat("a ", arch, " guest on a ", u.machine, " host");
    return "tcg";
  }
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    *why = "/dev/kvm is absent or not accessible";
    return "tcg";
  }
  struct stat st;
  if (stat(kernel.c_str(), &st) != 0) {
    *why = absl::StrCat("no kernel at ", kernel);
    return "tcg";
  }
  const std::string cache = absl::StrCat(cache_dir, "/kvm-probe.", arch, ".",
                                         st.st_ino, ".", st.st_mtim.tv_sec);
  if (absl::StatusOr<std::string> known = ReadFile(cache); known.ok()) {
    *why = absl::StrCat("KVM probe (remembered): ", *known);
    return absl::StartsWith(*known, "works") ? "kvm" : "tcg";
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
  SubprocessOptions options;
  options.argv = *QemuArgv(probe, launch);
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  std::string verdict = "broken: QEMU did not start";
  if (absl::StatusOr<Subprocess> qemu = Subprocess::Start(std::move(options));
      qemu.ok()) {
    absl::StatusOr<Subprocess::Output> out =
        qemu->Communicate("", absl::Seconds(20));
    if (!out.ok()) {
      verdict = "broken: no kernel panic within 20 s";
    } else if (absl::StrContains(out->stdout_data, "Kernel panic")) {
      verdict = "works: the kernel booted to its expected panic";
    } else {
      // QEMU's first complaint, on one line.
      const std::string complaint =
          out->stderr_data.substr(0, out->stderr_data.find('\n'));
      verdict = absl::StrCat("broken: ", complaint.empty()
                                             ? "the kernel did not get far"
                                             : complaint.substr(0, 200));
    }
  }
  (void)WriteFileAtomically(cache, verdict);
  *why = absl::StrCat("KVM probe: ", verdict);
  return absl::StartsWith(verdict, "works") ? "kvm" : "tcg";
}

}  // namespace fcvm::runner::qemu
