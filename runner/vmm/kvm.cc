#include "runner/vmm/kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"

namespace fcvm::runner {
namespace {

constexpr size_t kGuestMemory = 0x4000;
constexpr uint64_t kCodeAddress = 0x1000;

std::string Errno(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

// Runs the stub; "" when it did what it should, else what went wrong. In
// the probe's child process only.
std::string RunStub() {
  UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) return Errno("open /dev/kvm");
  const int api = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (api != KVM_API_VERSION) {
    return absl::StrCat("KVM API version ", api, ", expected ",
                        KVM_API_VERSION);
  }
  UniqueFd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (!vm.valid()) return Errno("KVM_CREATE_VM");
  // Anonymous memory for the guest; the child exits right after, so it is
  // never unmapped by hand.
  void* memory = mmap(nullptr, kGuestMemory, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return Errno("mmap guest memory");
  uint8_t* code = static_cast<uint8_t*>(memory) + kCodeAddress;
#if defined(__x86_64__)
  // Real mode: mov dx, 0x3f8; mov al, 'K'; out dx, al; hlt.
  const uint8_t stub[] = {0xba, 0xf8, 0x03, 0xb0, 'K', 0xee, 0xf4};
#elif defined(__aarch64__)
  // movz x1, #0x1, lsl #16 (0x10000, past the memory); str x0, [x1].
  const uint32_t stub[] = {0xd2a00021, 0xf9000020};
#else
  return "no KVM probe for this CPU";
#endif
  memcpy(code, stub, sizeof(stub));
  kvm_userspace_memory_region region = {};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kGuestMemory;
  region.userspace_addr = reinterpret_cast<uint64_t>(memory);
  if (ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    return Errno("KVM_SET_USER_MEMORY_REGION");
  }
  UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  if (!vcpu.valid()) return Errno("KVM_CREATE_VCPU");
  const int run_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return Errno("KVM_GET_VCPU_MMAP_SIZE");
  // The kernel's shared kvm_run page of this vCPU.
  auto* run = static_cast<kvm_run*>(mmap(
      nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(), 0));
  if (run == MAP_FAILED) return Errno("mmap kvm_run");
#if defined(__x86_64__)
  kvm_sregs sregs;
  if (ioctl(vcpu.get(), KVM_GET_SREGS, &sregs) != 0) {
    return Errno("KVM_GET_SREGS");
  }
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu.get(), KVM_SET_SREGS, &sregs) != 0) {
    return Errno("KVM_SET_SREGS");
  }
  kvm_regs regs = {};
  regs.rip = kCodeAddress;
  regs.rflags = 2;  // Bit 1 is reserved and must be set.
  if (ioctl(vcpu.get(), KVM_SET_REGS, &regs) != 0) {
    return Errno("KVM_SET_REGS");
  }
  bool saw_io = false;
  for (int step = 0; step < 4; ++step) {
    if (ioctl(vcpu.get(), KVM_RUN, 0) != 0) return Errno("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x3f8) {
      saw_io = true;
      continue;
    }
    if (run->exit_reason == KVM_EXIT_HLT && saw_io) return "";
    break;
  }
#elif defined(__aarch64__)
  kvm_vcpu_init init = {};
  if (ioctl(vm.get(), KVM_ARM_PREFERRED_TARGET, &init) != 0) {
    return Errno("KVM_ARM_PREFERRED_TARGET");
  }
  if (ioctl(vcpu.get(), KVM_ARM_VCPU_INIT, &init) != 0) {
    return Errno("KVM_ARM_VCPU_INIT");
  }
  uint64_t pc = kCodeAddress;
  kvm_one_reg reg = {};
  reg.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
           (offsetof(struct kvm_regs, regs.pc) / sizeof(uint32_t));
  reg.addr = reinterpret_cast<uint64_t>(&pc);
  if (ioctl(vcpu.get(), KVM_SET_ONE_REG, &reg) != 0) {
    return Errno("KVM_SET_ONE_REG pc");
  }
  if (ioctl(vcpu.get(), KVM_RUN, 0) != 0) return Errno("KVM_RUN");
  if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == 0x10000 &&
      run->mmio.is_write) {
    return "";
  }
#endif
  if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
    return absl::StrCat("KVM internal error (suberror ", run->internal.suberror,
                        ")");
  }
  if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
    return absl::StrCat("KVM could not enter the guest (reason ",
                        run->fail_entry.hardware_entry_failure_reason, ")");
  }
  return absl::StrCat("unexpected KVM exit ", run->exit_reason);
}

// size, mtime and inode of `path`, for cache keys; "-" if absent.
std::string FileKey(const std::string& path) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0) return "-";
  return absl::StrCat(path, ":", st.st_size, ":", st.st_ino, ":",
                      st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

}  // namespace

std::string HostArch() {
  struct utsname u;
  return uname(&u) == 0 ? u.machine : "unknown";
}

KvmVerdict ProbeKvmDirectly(absl::Duration timeout) {
  if (access("/dev/kvm", F_OK) != 0) {
    return {false, "/dev/kvm: absent (no KVM in this kernel or machine)"};
  }
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    return {false,
            "/dev/kvm: no permission (join the kvm group, or run as root)"};
  }
  absl::StatusOr<Pipe> pipe = MakePipe();
  if (!pipe.ok()) return {false, std::string(pipe.status().message())};
  const pid_t child = fork();
  if (child < 0) return {false, Errno("fork for the KVM probe")};
  if (child == 0) {
    pipe->read.reset();
    const std::string result = RunStub();
    (void)!write(pipe->write.get(), result.data(), result.size());
    _exit(0);
  }
  pipe->write.reset();
  pollfd pfd = {pipe->read.get(), POLLIN, 0};
  std::string result;
  bool finished = false;
  const int ready =
      poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready > 0) {
    absl::StatusOr<std::string> said = ReadAll(pipe->read.get(), "KVM probe");
    finished = said.ok();
    if (said.ok()) result = *said;
  }
  if (!finished) kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished) {
    return {false,
            absl::StrCat("broken: a 2-instruction guest did not exit within ",
                         absl::FormatDuration(timeout))};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return {false, "broken: the KVM probe crashed"};
  }
  if (!result.empty()) return {false, absl::StrCat("broken: ", result)};
  return {true, "works: KVM ran a probe guest"};
}

KvmVerdict CheckKvm(const KvmCheck& check) {
  if (check.arch != HostArch()) {
    return {false, absl::StrCat("a ", check.arch, " guest on a ", HostArch(),
                                " host: no KVM across CPUs")};
  }
  KvmVerdict direct =
      check.direct_probe ? check.direct_probe() : ProbeKvmDirectly();
  if (!direct.works) return direct;
  struct stat kvm;
  struct utsname u;
  const std::string key = absl::StrCat(
      "host ", uname(&u) == 0 ? u.release : "?", " ", u.version, " kvm ",
      stat("/dev/kvm", &kvm) == 0
          ? absl::StrCat(kvm.st_rdev, ":", kvm.st_ino, ":", kvm.st_ctim.tv_sec)
          : "-",
      " arch ", check.arch, " kernel ", FileKey(check.kernel), " ", check.vmm,
      " ", FileKey(check.vmm_binary));
  std::string cache;
  if (!check.cache_dir.empty()) {
    cache = absl::StrCat(check.cache_dir, "/kvm-verdict.", check.vmm, ".",
                         Sha256Hex(key).substr(0, 16));
    if (absl::StatusOr<std::string> known = ReadFile(cache); known.ok()) {
      const size_t newline = known->find('\n');
      // The file holds the key it was made for, then the verdict.
      if (newline != std::string::npos && known->substr(0, newline) == key) {
        const std::string verdict = known->substr(newline + 1);
        return {absl::StartsWith(verdict, "works"),
                absl::StrCat(verdict, " (remembered)")};
      }
    }
  }
  if (!check.vmm_probe) return direct;
  VmmProbeResult probed = check.vmm_probe();
  if (probed.cacheable && !cache.empty()) {
    (void)WriteFileAtomically(
        cache, absl::StrCat(key, "\n", probed.verdict.why), 0600);
  }
  return probed.verdict;
}

}  // namespace fcvm::runner
