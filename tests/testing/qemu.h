#ifndef FCVM_TESTS_TESTING_QEMU_H_
#define FCVM_TESTS_TESTING_QEMU_H_

// Booting guests under QEMU in integration tests: the command line for a
// microVM-like machine (microvm on x86_64, virt on aarch64, virtio-mmio
// devices only) and a console the test can read and type into.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/subprocess.h"

namespace fcvm::testing {

struct QemuDrive {
  std::string path;
  bool read_only = false;
};

struct QemuSpec {
  std::string arch;   // "x86_64" or "aarch64".
  std::string accel;  // "kvm" or "tcg".
  std::string kernel;
  std::string initrd;  // Optional.
  // Appended to the console and machine arguments QemuArgv picks.
  std::string append;
  std::vector<QemuDrive> drives;  // vda, vdb, ... in order.
  int memory_mib = 512;
  int cpus = 2;
  // A NIC on a hub with nothing else on it: no traffic leaves QEMU.
  bool isolated_nic = false;
  bool vsock = false;  // Needs the host's /dev/vhost-vsock.
  // fw_cfg files: name (e.g. "opt/fcvm/plan") -> host file.
  std::vector<std::pair<std::string, std::string>> fw_cfg;
  // A user-mode (slirp) NIC: the guest sees `net` (e.g. "10.0.2.0/24"), and
  // TCP connections to guestfwd's address:port are handed to a fresh run of
  // its command (stdin/stdout = the connection). Nothing else gets out:
  // restrict=on.
  struct UserNet {
    std::string net;
    std::string guestfwd_address;  // "169.254.169.254:80"
    std::string guestfwd_command;
  };
  std::optional<UserNet> user_net;
};

// $TEST_TMPDIR, or /tmp outside Bazel.
std::string TestTmpDir();

// A blank sparse file of `size` bytes, as the runner gives each VM for its
// writable disk.
[[nodiscard]] absl::Status MakeBlankDisk(const std::string& path, off_t size);

// qemu-system-<arch> argv: the runner's (runner/qemu/argv), serial console
// on stdio, no reboot (a guest reset ends QEMU), virtio-rng.
std::vector<std::string> QemuArgv(const QemuSpec& spec);

// Whether /dev/kvm could run a guest of `arch` (same CPU, accessible).
// It may still fail at run time (DESIGN.md): callers fall back to TCG.
bool KvmUsableFor(const std::string& arch);

// A running QEMU whose serial console the test reads and types into.
// Destroying it kills QEMU.
class QemuConsole {
 public:
  [[nodiscard]] static absl::StatusOr<QemuConsole> Start(const QemuSpec& spec);

  // Reads the console until `marker` appears after what earlier calls
  // consumed; fails with the console so far after `timeout` or if QEMU ends.
  [[nodiscard]] absl::Status WaitFor(const std::string& marker,
                                     absl::Duration timeout);
  // Types `text` into the serial console.
  [[nodiscard]] absl::Status Send(const std::string& text);
  // Reads until QEMU exits (or kills it after `timeout`).
  [[nodiscard]] absl::StatusOr<ExitStatus> WaitExit(absl::Duration timeout);

  const std::string& output() const { return output_; }

 private:
  explicit QemuConsole(Subprocess qemu) : qemu_(std::move(qemu)) {}
  // Reads what is there within `timeout`; false at end of file.
  bool ReadSome(absl::Duration timeout);

  Subprocess qemu_;
  std::string output_;
  size_t consumed_ = 0;
  bool eof_ = false;
};

// Boots spec(accel) until `marker` is on the console: under KVM first where
// it might work (at most 15 s: a broken KVM never gets that far; later
// boots in the process skip it), then TCG (3 minutes). FCVM_TEST_ACCEL
// forces one. A failed attempt's console goes to stderr.
[[nodiscard]] absl::StatusOr<QemuConsole> BootUntil(
    const std::string& arch,
    const std::function<QemuSpec(const std::string& accel)>& spec,
    const std::string& marker, std::string* accel_used);

}  // namespace fcvm::testing

#endif  // FCVM_TESTS_TESTING_QEMU_H_
