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

namespace fcvm::testing {

std::vector<std::string> QemuArgv(const QemuSpec& spec) {
  const bool x86 = spec.arch == "x86_64";
  std::vector<std::string> argv;
  if (x86) {
    argv = {"qemu-system-x86_64", "-M", "microvm,acpi=off"};
  } else {
    argv = {"qemu-system-aarch64", "-M", "virt", "-cpu",
            spec.accel == "kvm" ? "host" : "cortex-a57"};
  }
  // microvm,acpi=off has no ACPI tables: say so, or the kernel logs an
  // error looking for them; reboot=t makes a reset end the VM.
  // Without ACPI the x86 kernel finds fw_cfg only where it is told: QEMU's
  // standard I/O ports (selector 0x510, data 0x511, DMA 0x514).
  const std::string append = absl::StrCat(
      x86 ? "console=ttyS0 reboot=t acpi=off" : "console=ttyAMA0",
      x86 && !spec.fw_cfg.empty() ? " qemu_fw_cfg.ioport=12@0x510:0:1:4" : "",
      " panic=-1 ", spec.append);
  argv.insert(
      argv.end(),
      {"-accel", spec.accel, "-m", absl::StrCat(spec.memory_mib), "-smp",
       absl::StrCat(spec.cpus), "-nodefaults", "-no-user-config", "-display",
       "none", "-serial", "stdio", "-no-reboot", "-kernel", spec.kernel,
       "-append", append, "-device", "virtio-rng-device"});
  if (!spec.initrd.empty()) argv.insert(argv.end(), {"-initrd", spec.initrd});
  // virt (aarch64) probes virtio-mmio slots from the top: the device added
  // last becomes vda. Add drives in reverse there so vda is drives[0].
  for (size_t k = 0; k < spec.drives.size(); ++k) {
    const size_t i = x86 ? k : spec.drives.size() - 1 - k;
    const QemuDrive& drive = spec.drives[i];
    argv.insert(
        argv.end(),
        {"-drive",
         absl::StrCat("id=d", i, ",file=", drive.path, ",format=raw,if=none",
                      drive.read_only ? ",readonly=on" : ""),
         "-device", absl::StrCat("virtio-blk-device,drive=d", i)});
  }
  if (spec.isolated_nic) {
    argv.insert(argv.end(), {"-netdev", "hubport,id=n0,hubid=0", "-device",
                             "virtio-net-device,netdev=n0"});
  }
  for (const auto& [name, file] : spec.fw_cfg) {
    argv.insert(argv.end(),
                {"-fw_cfg", absl::StrCat("name=", name, ",file=", file)});
  }
  if (spec.user_net.has_value()) {
    argv.insert(argv.end(),
                {"-netdev",
                 absl::StrCat("user,id=u0,restrict=on,net=", spec.user_net->net,
                              ",guestfwd=tcp:", spec.user_net->guestfwd_address,
                              "-cmd:", spec.user_net->guestfwd_command),
                 "-device", "virtio-net-device,netdev=u0"});
  }
  if (spec.vsock) {
    argv.insert(argv.end(), {"-device", "vhost-vsock-device,guest-cid=3"});
  }
  return argv;
}

std::string TestTmpDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

absl::Status MakeBlankDisk(const std::string& path, off_t size) {
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_CREAT | O_TRUNC | O_WRONLY, 0600));
  if (ftruncate(fd.get(), size) != 0) {
    return ErrnoStatus(absl::StrCat("ftruncate ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<QemuConsole> BootUntil(
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

bool InPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "", ':')) {
    if (access(absl::StrCat(dir, "/", program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

absl::StatusOr<QemuConsole> QemuConsole::Start(const QemuSpec& spec) {
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

absl::Status QemuConsole::WaitFor(const std::string& marker,
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

absl::Status QemuConsole::Send(const std::string& text) {
  return WriteAll(qemu_.stdin_pipe().get(), text, "the QEMU console");
}

absl::StatusOr<ExitStatus> QemuConsole::WaitExit(absl::Duration timeout) {
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
