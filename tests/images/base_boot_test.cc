// Boots a guest kernel of //kernel with //images:base_<cpu> as the
// read-only root and a blank sparse writable disk, under QEMU (KVM where it
// really works, else TCG). fcvm-init formats the disk, builds the overlay
// root and, with no guest agent in the image yet, starts a shell on the
// console; the test types Podman commands into it and checks their output.
// A second boot of the same writable disk finds what the first one wrote.
// A second case loads the OCI images of //images/oci from attached drives
// and fetches pages from busybox httpd and nginx inside the guest.
//   base_boot_test <arch> <kernel> <base.ext4> <busybox-httpd.tar> <nginx.tar>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/qemu.h"

namespace fcvm {
namespace {

using ::fcvm::testing::QemuConsole;
using ::fcvm::testing::QemuSpec;
using ::testing::HasSubstr;

std::string g_arch, g_kernel, g_image, g_busybox_httpd, g_nginx;

QemuSpec Spec(const std::string& accel, const std::string& disk,
              const std::vector<std::string>& oci_archives) {
  QemuSpec spec;
  spec.arch = g_arch;
  spec.accel = accel;
  spec.kernel = g_kernel;
  // The image has the agent; these tests type into the init's shell.
  spec.append =
      "root=/dev/vda ro rootfstype=ext4 init=/sbin/fcvm-init fcvm.agent=shell";
  spec.drives = {{g_image, /*read_only=*/true}, {disk, false}};
  // OCI archives as raw read-only drives (vdc, vdd, ...), as the runner
  // hands locally built images to a VM.
  for (const std::string& archive : oci_archives) {
    spec.drives.push_back({archive, /*read_only=*/true});
  }
  spec.memory_mib = 1024;
  return spec;
}

// Boots to the init's shell (KVM where it works, else TCG).
[[nodiscard]] absl::StatusOr<QemuConsole> BootToShell(
    const std::string& disk, std::string* accel_used,
    const std::vector<std::string>& oci_archives = {}) {
  absl::StatusOr<QemuConsole> vm = ::fcvm::testing::BootUntil(
      g_arch,
      [&](const std::string& accel) { return Spec(accel, disk, oci_archives); },
      "fcvm-init: [", accel_used);
  if (!vm.ok()) return vm.status();
  absl::Status shell = vm->WaitFor("FCVM-INIT-SHELL", absl::Minutes(3));
  if (!shell.ok()) {
    return absl::Status(shell.code(),
                        absl::StrCat(shell.message(), "\n", vm->output()));
  }
  return vm;
}

// Runs `command` in the guest shell; its output ends at a marker with its
// exit code, which the echo of the typed line cannot contain.
[[nodiscard]] absl::StatusOr<std::string> RunInGuest(QemuConsole& vm,
                                                     const std::string& command,
                                                     absl::Duration timeout) {
  static int counter = 0;
  const std::string tag = absl::StrCat("FCVM-DONE-", ++counter, "-rc");
  const size_t start = vm.output().size();
  absl::Status sent = vm.Send(absl::StrCat(command, "; echo ", tag.substr(0, 9),
                                           tag.substr(9), "=$?\n"));
  if (!sent.ok()) return sent;
  absl::Status done = vm.WaitFor(absl::StrCat(tag, "=0\r\n"), timeout);
  std::string output = vm.output().substr(start);
  if (!done.ok()) {
    return absl::Status(
        done.code(),
        absl::StrCat("'", command, "': ", done.message(), "\n", output));
  }
  return output;
}

TEST(BaseImageBootTest, OverlayRootAndPodman) {
  const std::string qemu = "qemu-system-" + g_arch;
  if (!::fcvm::InPath(qemu)) {
    GTEST_SKIP() << qemu
                 << " is not installed (tools/bootstrap.sh installs it)";
  }
  const std::string disk = ::fcvm::testing::TestTmpDir() + "/writable.img";
  ASSERT_TRUE(::fcvm::testing::MakeBlankDisk(disk, 2ll << 30).ok());

  const absl::Time start = absl::Now();
  std::string accel;
  absl::StatusOr<QemuConsole> vm = BootToShell(disk, &accel);
  ASSERT_TRUE(vm.ok()) << vm.status();
  const absl::Duration to_shell = absl::Now() - start;
  EXPECT_THAT(vm->output(),
              HasSubstr("formatting blank writable disk /dev/vdb"));
  EXPECT_THAT(vm->output(), HasSubstr("overlay root ready"));

  absl::StatusOr<std::string> mounts =
      RunInGuest(*vm, "cat /proc/mounts", absl::Minutes(1));
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  EXPECT_THAT(*mounts, HasSubstr("overlay / overlay"));
  EXPECT_THAT(*mounts, HasSubstr("/dev/vdb /var/lib/containers ext4"));
  EXPECT_THAT(*mounts, HasSubstr("cgroup2 /sys/fs/cgroup cgroup2"));

  absl::StatusOr<std::string> version =
      RunInGuest(*vm, "podman --version", absl::Minutes(3));
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_THAT(*version, HasSubstr("podman version 4.3.1"));

  absl::StatusOr<std::string> info =
      RunInGuest(*vm,
                 "podman info --format 'info: {{.Host.CgroupManager}} "
                 "{{.Host.EventLogger}} {{.Host.OCIRuntime.Name}} "
                 "{{.Store.GraphDriverName}} "
                 "{{.Store.GraphRoot}} {{.Host.CgroupsVersion}}'",
                 absl::Minutes(5));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(*info, HasSubstr("info: cgroupfs file crun overlay "
                               "/var/lib/containers/storage v2"));

  // Written to the overlay root: lands on the writable disk.
  ASSERT_TRUE(RunInGuest(*vm, "echo fcvm-persisted > /root/marker && sync",
                         absl::Minutes(1))
                  .ok());
  ASSERT_TRUE(vm->Send("exit\n").ok());
  absl::StatusOr<ExitStatus> exit = vm->WaitExit(absl::Minutes(2));
  ASSERT_TRUE(exit.ok()) << exit.status() << "\n" << vm->output();
  EXPECT_TRUE(exit->success()) << exit->ToString();
  EXPECT_THAT(vm->output(), HasSubstr("powering off"));
  EXPECT_THAT(vm->output(), ::testing::Not(HasSubstr("FATAL")));
  std::cerr << "accel=" << accel << " boot to shell " << to_shell
            << ", whole run " << absl::Now() - start << "\n---- console ----\n"
            << vm->output() << "\n---- end ----\n";

  // Second boot of the same disk: no formatting, the file is there.
  absl::StatusOr<QemuConsole> again = BootToShell(disk, &accel);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->output(), ::testing::Not(HasSubstr("formatting")));
  absl::StatusOr<std::string> marker =
      RunInGuest(*again, "cat /root/marker", absl::Minutes(1));
  ASSERT_TRUE(marker.ok()) << marker.status();
  EXPECT_THAT(*marker, HasSubstr("fcvm-persisted"));
  ASSERT_TRUE(again->Send("exit\n").ok());
  exit = again->WaitExit(absl::Minutes(2));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString();
}

// The workload images of //images/oci, built from pinned Debian packages,
// load and serve HTTP inside the VM with no registry anywhere.
TEST(BaseImageBootTest, RunsLocallyBuiltOciImages) {
  const std::string qemu = "qemu-system-" + g_arch;
  if (!::fcvm::InPath(qemu)) {
    GTEST_SKIP() << qemu
                 << " is not installed (tools/bootstrap.sh installs it)";
  }
  const std::string disk = ::fcvm::testing::TestTmpDir() + "/oci-writable.img";
  ASSERT_TRUE(::fcvm::testing::MakeBlankDisk(disk, 2ll << 30).ok());
  std::string accel;
  const absl::Time start = absl::Now();
  absl::StatusOr<QemuConsole> vm =
      BootToShell(disk, &accel, {g_busybox_httpd, g_nginx});
  ASSERT_TRUE(vm.ok()) << vm.status();
  struct Step {
    std::string command;
    std::string expect;
  };
  for (const Step& step : std::vector<Step>{
           {"podman load -q -i /dev/vdc", "fcvm/busybox-httpd:latest"},
           {"podman load -q -i /dev/vdd", "fcvm/nginx:latest"},
           {"podman run -d --network host --name web "
            "fcvm/busybox-httpd:latest",
            ""},
           {"podman run -d --network host --name nginx fcvm/nginx:latest", ""},
           // Both servers need a moment under TCG.
           {"for i in $(seq 60); do wget -q -O - http://127.0.0.1:8080/ && "
            "break; sleep 1; done",
            "fcvm busybox-httpd: served from an OCI image"},
           {"for i in $(seq 60); do wget -q -O - http://127.0.0.1:80/ && "
            "break; sleep 1; done",
            "Welcome to nginx!"},
           {"podman logs nginx", "\"GET / HTTP/1.1\" 200"},
           {"podman stop -t 5 web nginx", ""},
       }) {
    absl::StatusOr<std::string> out =
        RunInGuest(*vm, step.command, absl::Minutes(5));
    ASSERT_TRUE(out.ok()) << out.status() << "\n---- console ----\n"
                          << vm->output();
    EXPECT_THAT(*out, HasSubstr(step.expect)) << step.command;
  }
  std::cerr << "accel=" << accel
            << " load + run + fetch both images: " << absl::Now() - start
            << "\n";
  ASSERT_TRUE(vm->Send("exit\n").ok());
  absl::StatusOr<ExitStatus> exit = vm->WaitExit(absl::Minutes(2));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString();
}

}  // namespace
}  // namespace fcvm

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  if (argc != 6) {
    std::cerr << "usage: " << argv[0]
              << " ARCH KERNEL BASE_EXT4 BUSYBOX_HTTPD_OCI NGINX_OCI\n";
    return 2;
  }
  fcvm::g_arch = argv[1];
  fcvm::g_kernel = argv[2];
  fcvm::g_image = argv[3];
  fcvm::g_busybox_httpd = argv[4];
  fcvm::g_nginx = argv[5];
  return RUN_ALL_TESTS();
}
