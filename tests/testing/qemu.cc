#include "tests/testing/qemu.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "runner/vmm/qemu/argv.h"
#include "runner/vmm/vm_spec.pb.h"

namespace fcvm::testing {

std::vector<std::string> QemuArgv(const QemuSpec& spec) {
  // The runner's own command line, so the tests boot what `fcvm run` boots.
  runner::VmSpec vm;
  vm.set_name("test");
  vm.set_arch(spec.arch);
  vm.set_kernel(spec.kernel);
  vm.set_initrd(spec.initrd);
  vm.set_boot_args(spec.append);
  vm.set_memory_mib(spec.memory_mib);
  vm.set_vcpus(spec.cpus);
  for (const QemuDrive& drive : spec.drives) {
    runner::Disk* disk = vm.add_disks();
    disk->set_path(drive.path);
    disk->set_read_only(drive.read_only);
  }
  if (spec.isolated_nic) vm.add_nics();
  if (spec.user_net.has_value()) {
    runner::UserNet* user = vm.add_nics()->mutable_user();
    user->set_net(spec.user_net->net);
    user->set_isolated(true);
    user->set_guestfwd_address(spec.user_net->guestfwd_address);
    user->set_guestfwd_command(spec.user_net->guestfwd_command);
  }
  if (spec.vsock) vm.set_vsock_cid(3);
  runner::qemu::Launch launch;
  launch.accel = spec.accel;
  launch.fw_cfg = spec.fw_cfg;
  absl::StatusOr<std::vector<std::string>> argv =
      runner::qemu::QemuArgv(vm, launch);
  if (!argv.ok()) {
    std::cerr << "QemuArgv: " << argv.status() << "\n";
    std::abort();  // A broken test spec, not a test result.
  }
  return *argv;
}

std::string TestTmpDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

[[nodiscard]] absl::Status MakeBlankDisk(const std::string& path, off_t size) {
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_CREAT | O_TRUNC | O_WRONLY, 0600));
  if (ftruncate(fd.get(), size) != 0) {
    return ErrnoStatus(absl::StrCat("ftruncate ", path));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<QemuConsole> BootUntil(
    const std::string& arch,
    const std::function<QemuSpec(const std::string& accel)>& spec,
    const std::string& marker, std::string* accel_used) {
  static bool kvm_failed = false;
  std::vector<std::string> accels = {"tcg"};
  if (KvmUsableFor(arch) && !kvm_failed) accels.insert(accels.begin(), "kvm");
  if (const char* forced = std::getenv("FCVM_TEST_ACCEL")) accels = {forced};
  absl::Status last;
  for (const std::string& accel : accels) {
    absl::StatusOr<QemuConsole> vm = QemuConsole::Start(spec(accel));
    if (!vm.ok()) return vm.status();
    last = vm->WaitFor(marker,
                       accel == "kvm" ? absl::Seconds(15) : absl::Minutes(3));
    if (last.ok()) {
      *accel_used = accel;
      return vm;
    }
    if (accel == "kvm") kvm_failed = true;
    std::cerr << "accel=" << accel << ": " << last << "\n---- console ----\n"
              << vm->output() << "\n---- end ----\n";
  }
  return last;
}

bool KvmUsableFor(const std::string& arch) {
  struct utsname u;
  if (uname(&u) != 0 || arch != u.machine) return false;
  return access("/dev/kvm", R_OK | W_OK) == 0;
}

[[nodiscard]] absl::StatusOr<QemuConsole> QemuConsole::Start(
    const QemuSpec& spec) {
  SubprocessOptions options;
  options.argv = QemuArgv(spec);
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  // QEMU's own complaints go to the test log.
  options.stderr_mode = StdioMode::kInherit;
  absl::StatusOr<Subprocess> qemu = Subprocess::Start(std::move(options));
  if (!qemu.ok()) return qemu.status();
  return QemuConsole(std::move(*qemu));
}

bool QemuConsole::ReadSome(absl::Duration timeout) {
  if (eof_) return false;
  pollfd pfd = {qemu_.stdout_pipe().get(), POLLIN, 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  if (poll(&pfd, 1, ms < 0 ? 0 : ms) <= 0) return true;
  char buffer[65536];
  ssize_t n = read(pfd.fd, buffer, sizeof(buffer));
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  output_.append(buffer, n);
  return true;
}

[[nodiscard]] absl::Status QemuConsole::WaitFor(const std::string& marker,
                                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const size_t found = output_.find(marker, consumed_);
    if (found != std::string::npos) {
      consumed_ = found + marker.size();
      return absl::OkStatus();
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no '", marker, "' on the console within ",
                       absl::FormatDuration(timeout)));
    }
    if (!ReadSome(std::min(left, absl::Seconds(1)))) {
      return absl::UnavailableError(absl::StrCat("QEMU ended before '", marker,
                                                 "' appeared on the console"));
    }
  }
}

[[nodiscard]] absl::Status QemuConsole::Send(const std::string& text) {
  return WriteAll(qemu_.stdin_pipe().get(), text, "the QEMU console");
}

[[nodiscard]] absl::StatusOr<ExitStatus> QemuConsole::WaitExit(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (ReadSome(std::min(deadline - absl::Now(), absl::Seconds(1)))) {
    if (absl::Now() >= deadline) {
      qemu_.Kill().IgnoreError();
      return absl::DeadlineExceededError(absl::StrCat(
          "QEMU still running after ", absl::FormatDuration(timeout)));
    }
  }
  return qemu_.Wait(deadline - absl::Now());
}

}  // namespace fcvm::testing
