// fcvm-init: PID 1 of the base image.
//
// The kernel mounts the read-only base image as "/" and runs this. It mounts
// the kernel filesystems, formats the per-VM writable disk if it is blank,
// builds an overlayfs root (read-only base below, an upper directory on the
// writable disk above), pivots into it, puts Podman's container storage
// directly on the writable disk (overlay on overlay does not work), and
// starts the guest agent. Until the agent exists in an image, it starts a
// shell on the console instead. It then reaps orphans, forwards SIGTERM to
// the agent, and when the agent ends syncs and powers the VM off: a VM never
// hangs after its workload. No systemd, no OpenRC: every phase is timed on
// the console, because boot time matters.
//
// Everything it says goes to the console as "fcvm-init: ..." lines; a fatal
// error prints "fcvm-init: FATAL: <cause>" and powers off.
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "rootfs/init/boot_config.h"
#include "rootfs/init/disk.h"

namespace fcvm::init {
namespace {

// Where the writable disk is mounted before and after the pivot, and where
// the new root is assembled.
constexpr char kRun[] = "/run";
constexpr char kDiskMount[] = "/run/fcvm/disk";
constexpr char kNewRoot[] = "/mnt";
constexpr char kPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

double UptimeSeconds() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void Say(const std::string& text) {
  std::string line =
      absl::StrCat("fcvm-init: [", absl::StrFormat("%.3f", UptimeSeconds()),
                   "] ", text, "\n");
  (void)!write(STDOUT_FILENO, line.data(), line.size());
}

[[nodiscard]] absl::Status Mount(const std::string& source,
                                 const std::string& target, const char* type,
                                 unsigned long flags,
                                 const std::string& data = "") {
  if (mount(source.c_str(), target.c_str(), type, flags,
            data.empty() ? nullptr : data.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("mounting ", type ? type : "", " ", source,
                                    " on ", target));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status MakeDirs(const std::string& path,
                                    mode_t mode = 0755) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    const std::string prefix = path.substr(0, i);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST)
      return ErrnoStatus(absl::StrCat("creating ", prefix));
  }
  return absl::OkStatus();
}

// The console as stdin/stdout/stderr, whatever the kernel managed to open
// (a base image may lack /dev/console before devtmpfs is mounted).
void UseConsole() {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  for (int target = 0; target < 3; ++target) dup2(fd, target);
  if (fd > 2) close(fd);
}

[[nodiscard]] absl::Status MountKernelFilesystems() {
  RETURN_IF_ERROR(
      Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  RETURN_IF_ERROR(
      Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  // CONFIG_DEVTMPFS_MOUNT may have mounted it already.
  if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") != 0 &&
      errno != EBUSY) {
    return ErrnoStatus("mounting devtmpfs on /dev");
  }
  UseConsole();
  return Mount("tmpfs", kRun, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

// Mounts the writable disk, formatting it first if it is blank (never if it
// holds anything else).
[[nodiscard]] absl::Status MountWritableDisk(const BootConfig& config) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(config.disk, O_RDONLY));
  ASSIGN_OR_RETURN(DiskContent content,
                   Annotate(ProbeDisk(fd.get()), config.disk));
  fd.reset();
  if (content == DiskContent::kOther) {
    return absl::FailedPreconditionError(absl::StrCat(
        "writable disk ", config.disk,
        " holds data that is not an ext filesystem; refusing to format it"));
  }
  if (content == DiskContent::kBlank) {
    Say(absl::StrCat("formatting blank writable disk ", config.disk));
    // Lazy inode-table and journal init: seconds saved on a big disk.
    SubprocessOptions mke2fs;
    mke2fs.argv = {"/sbin/mke2fs",
                   "-q",
                   "-F",
                   "-t",
                   "ext4",
                   "-L",
                   "fcvm-writable",
                   "-E",
                   "lazy_itable_init=1,lazy_journal_init=1",
                   config.disk};
    RETURN_IF_ERROR(RunCommand(mke2fs, absl::Minutes(5)).status());
  }
  RETURN_IF_ERROR(MakeDirs(kDiskMount));
  return Mount(config.disk, kDiskMount, "ext4", MS_NOATIME);
}

// Overlay root: the base image (this root) below, <disk>/root above.
[[nodiscard]] absl::Status MountOverlayRoot() {
  const std::string upper = absl::StrCat(kDiskMount, "/root/upper");
  const std::string work = absl::StrCat(kDiskMount, "/root/work");
  RETURN_IF_ERROR(MakeDirs(upper));
  RETURN_IF_ERROR(MakeDirs(work));
  return Mount("overlay", kNewRoot, "overlay", MS_NOATIME,
               absl::StrCat("lowerdir=/,upperdir=", upper, ",workdir=", work));
}

[[nodiscard]] absl::Status PivotIntoNewRoot() {
  for (const char* dir : {"/proc", "/sys", "/dev", kRun}) {
    const std::string target = absl::StrCat(kNewRoot, dir);
    RETURN_IF_ERROR(MakeDirs(target));
    RETURN_IF_ERROR(Mount(dir, target, nullptr, MS_MOVE));
  }
  if (chdir(kNewRoot) != 0) return ErrnoStatus("chdir to the new root");
  // pivot_root(".", "."): the old root ends up stacked under the new one and
  // is detached right away; the overlay keeps its lower layer alive.
  if (syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoStatus("pivot_root");
  if (umount2(".", MNT_DETACH) != 0)
    return ErrnoStatus("detaching the old root");
  if (chdir("/") != 0) return ErrnoStatus("chdir to /");
  return absl::OkStatus();
}

[[nodiscard]] absl::Status MountInNewRoot() {
  RETURN_IF_ERROR(Mount("cgroup2", "/sys/fs/cgroup", "cgroup2",
                        MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate"));
  RETURN_IF_ERROR(MakeDirs("/dev/pts"));
  RETURN_IF_ERROR(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "gid=5,mode=620,ptmxmode=666"));
  RETURN_IF_ERROR(MakeDirs("/dev/shm"));
  RETURN_IF_ERROR(
      Mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  // Podman's storage directly on the writable disk's ext4: its overlay
  // driver cannot use an overlayfs as upper layer.
  const std::string storage = absl::StrCat(kDiskMount, "/containers");
  RETURN_IF_ERROR(MakeDirs(storage, 0700));
  RETURN_IF_ERROR(MakeDirs("/var/lib/containers", 0700));
  return Mount(storage, "/var/lib/containers", nullptr, MS_BIND);
}

[[nodiscard]] absl::Status BringUpLoopback() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return ErrnoStatus("socket for lo");
  ifreq request = {};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &request) != 0)
    return ErrnoStatus("reading flags of lo");
  request.ifr_flags |= IFF_UP;
  if (ioctl(sock.get(), SIOCSIFFLAGS, &request) != 0)
    return ErrnoStatus("bringing lo up");
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Boot(BootConfig& config) {
  RETURN_IF_ERROR(MountKernelFilesystems());
  Say("started");
  ASSIGN_OR_RETURN(std::string cmdline, ReadFile("/proc/cmdline"));
  ASSIGN_OR_RETURN(config, ParseBootConfig(cmdline));
  RETURN_IF_ERROR(MountWritableDisk(config));
  RETURN_IF_ERROR(MountOverlayRoot());
  RETURN_IF_ERROR(PivotIntoNewRoot());
  RETURN_IF_ERROR(MountInNewRoot());
  Say(absl::StrCat("overlay root ready (writable disk ", config.disk, ")"));
  if (sethostname(config.hostname.data(), config.hostname.size()) != 0)
    return ErrnoStatus("sethostname");
  return BringUpLoopback();
}

// Starts the agent, or a shell when the image has none. Returns its pid.
[[nodiscard]] absl::StatusOr<pid_t> StartMain(const BootConfig& config,
                                              const sigset_t& original_mask) {
  std::vector<std::string> argv;
  if (config.agent != "shell" && access(config.agent.c_str(), X_OK) == 0) {
    argv = {config.agent};
    Say(absl::StrCat("starting the guest agent ", config.agent));
  } else {
    argv = {"/bin/busybox", "sh"};
    Say(config.agent == "shell"
            ? "fcvm.agent=shell: starting a shell on the console"
            : absl::StrCat("no guest agent at ", config.agent,
                           "; starting a shell on the console"));
    Say("FCVM-INIT-SHELL");
  }
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork");
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    setsid();
    ioctl(STDIN_FILENO, TIOCSCTTY, 0);
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    const std::string path_env = absl::StrCat("PATH=", kPath);
    char* env[] = {const_cast<char*>(path_env.c_str()),
                   const_cast<char*>("HOME=/root"),
                   const_cast<char*>("TERM=linux"), nullptr};
    execve(args[0], args.data(), env);
    std::fprintf(stderr, "fcvm-init: exec %s: %s\n", args[0],
                 std::strerror(errno));
    _exit(127);
  }
  return pid;
}

// Reaps every child; returns when `main` has exited, with its wait status.
// SIGTERM/SIGINT to the init go to `main` (its graceful stop).
int Supervise(pid_t main) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGCHLD, SIGTERM, SIGINT}) sigaddset(&signals, s);
  for (;;) {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == main) return status;
    }
    siginfo_t info;
    int signal = sigwaitinfo(&signals, &info);
    if (signal == SIGTERM || signal == SIGINT) {
      Say(absl::StrCat("signal ", signal, ": stopping pid ", main));
      kill(main, SIGTERM);
    }
  }
}

[[noreturn]] void PowerOff() {
  // Give everything left a moment to exit, then make the disk consistent.
  kill(-1, SIGTERM);
  absl::SleepFor(absl::Milliseconds(200));
  kill(-1, SIGKILL);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  sync();
  Say("powering off");
#if defined(__x86_64__)
  // x86 microVMs have no ACPI: a reset ends the VM (Firecracker, QEMU with
  // -no-reboot).
  reboot(RB_AUTOBOOT);
#else
  reboot(RB_POWER_OFF);  // PSCI SYSTEM_OFF.
#endif
  for (;;) pause();
}

}  // namespace
}  // namespace fcvm::init

int main() {
  using namespace fcvm::init;
  if (getpid() != 1) {
    std::fprintf(stderr,
                 "fcvm-init is the VM's init (PID 1); it mounts and pivots, "
                 "so it refuses to run as pid %d\n",
                 static_cast<int>(getpid()));
    return 2;
  }
  sigset_t blocked, original;
  sigemptyset(&blocked);
  for (int s : {SIGCHLD, SIGTERM, SIGINT}) sigaddset(&blocked, s);
  sigprocmask(SIG_BLOCK, &blocked, &original);
  // Ctrl-Alt-Del sends SIGINT to us instead of resetting the VM.
  reboot(RB_DISABLE_CAD);
  setenv("PATH", kPath, 1);

  BootConfig config;
  if (absl::Status booted = Boot(config); !booted.ok()) {
    Say(absl::StrCat("FATAL: ", booted.ToString()));
    PowerOff();
  }
  absl::StatusOr<pid_t> main_pid = StartMain(config, original);
  if (!main_pid.ok()) {
    Say(absl::StrCat("FATAL: ", main_pid.status().ToString()));
    PowerOff();
  }
  const int status = Supervise(*main_pid);
  Say(WIFEXITED(status)
          ? absl::StrCat("pid ", *main_pid, " exited with status ",
                         WEXITSTATUS(status))
          : absl::StrCat("pid ", *main_pid, " killed by signal ",
                         WTERMSIG(status)));
  PowerOff();
}
