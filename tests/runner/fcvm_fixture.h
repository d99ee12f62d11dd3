#ifndef FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_
#define FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_

// Driving the fcvm CLI from tests: a state directory of the test's own,
// the //runner:vm launchers (one per guest CPU) and //runner:fcvm, their
// output and exit codes, `inspect` as JSON, HTTP to published ports;
// whatever a test leaves running is killed and removed in TearDown.
//
// Tests run over targets: a backend (QEMU, or the stand-in firecracker of
// runner/vmm/firecracker/testing, which boots the VM under QEMU behind
// Firecracker's API) and a guest CPU.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace fcvm::testing {

// From argv (FcvmTestMain): the launchers, fcvm, the stand-in firecracker,
// the Firecracker spec it checks requests against, the host's guest kernel;
// then whatever else a test's BUILD target passes (absolute paths).
struct Programs {
  std::string vm_x86_64, vm_aarch64, fcvm, standin, spec, kernel;
  std::vector<std::string> extra;
};
extern Programs g_programs;

struct Target {
  std::string backend;        // "qemu" or "firecracker" (the stand-in).
  std::string arch;           // The guest's CPU.
  std::string accel = "tcg";  // QEMU's: "kvm" on a KVM host.
  std::string Name() const;   // "qemu_x86_64", for test names.
};
// For gtest's messages.
void PrintTo(const Target& target, std::ostream* os);

// The targets of this run: --targets=qemu|standin|kvm|all (default all):
// QEMU under TCG for both guest CPUs, the stand-in for the host's CPU
// (Firecracker runs no foreign guest), QEMU under KVM for the host's CPU
// (kvm: where the runner's check says KVM runs a guest; it skips, quoting
// that check, elsewhere).
std::vector<Target> Targets();

uint16_t FreePort();

// Targets() that are QEMU for the host's CPU (tests that need no foreign
// guest and no stand-in).
std::vector<Target> HostQemuTargets();

// A case's name from its target ("qemu_x86_64"), for INSTANTIATE_TEST_SUITE_P.
std::string TargetName(const ::testing::TestParamInfo<Target>& info);

// The launcher for the host's CPU (tests that are not over targets).
std::string HostVm();

class FcvmTest : public ::testing::TestWithParam<Target> {
 public:
  struct Result {
    int code = -1;
    std::string out, err;
  };

 protected:
  void SetUp() override;
  void TearDown() override;

  Result Exec(std::vector<std::string> argv, absl::Duration timeout);
  // The same with `input` on its stdin (nullopt: /dev/null).
  Result ExecWithInput(std::vector<std::string> argv,
                       std::optional<std::string> input,
                       absl::Duration timeout);
  Result Fcvm(std::vector<std::string> args,
              absl::Duration timeout = absl::Minutes(2));
  // `fcvm logs NAME` once it holds `want`, or as it stands after 30 s. A
  // server logs a request after answering it, and the line still travels
  // from the container through Podman and the agent to the host's log:
  // reading the log once, right after the page came, races with that.
  std::string LogsOnceTheyHold(const std::string& name,
                               const std::string& want);
  // `fcvm run` for this test's target (launcher, --backend): argv to run.
  std::vector<std::string> Run(std::vector<std::string> args) const;
  // The VM's state as `fcvm inspect` prints it (empty if none).
  google::protobuf::Struct Inspect(const std::string& name);
  static std::string Field(const google::protobuf::Struct& s,
                           const std::string& key);
  // Remembers the VM's VMM, so TearDown can kill it if it is left.
  void Remember(const google::protobuf::Struct& state);
  // The names `fcvm ls --json` lists.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Names();
  // GET / from ip:port.
  [[nodiscard]] absl::StatusOr<std::string> Get(
      const std::string& ip, uint16_t port,
      absl::Duration timeout = absl::Seconds(10));
  // Starts `argv` (a foreground `run`) and reads its progress on stderr
  // until `marker` (default: the container is ready), failing at once if
  // the runner ends first, or after 8 minutes. The VM's VMM is
  // remembered; `progress` gets what the runner said.
  [[nodiscard]] absl::StatusOr<Subprocess> StartUntil(
      std::vector<std::string> argv, const std::string& name,
      std::string* progress, const std::string& marker = "container ready");

  std::string state_;
  std::vector<std::pair<pid_t, uint64_t>> vmms_;
  // This case's target; null for a TEST_F case.
  const Target* GetParamOrNull() const;

  // How Fcvm() runs fcvm (a test may run it as another user).
  std::vector<std::string> fcvm_command_;
};

// main(): parses the programs and flags, then RUN_ALL_TESTS.
int FcvmTestMain(int argc, char** argv);
// The same in a network namespace of the test's own with loopback up (it
// goes with the process): for tests whose VMs get TAPs and nftables tables.
// Needs root.
int FcvmTestMainInOwnNetns(int argc, char** argv);

}  // namespace fcvm::testing

#endif  // FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_
