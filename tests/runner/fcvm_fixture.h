#ifndef FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_
#define FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_

// Driving the fcvm CLI from tests: a state directory of the test's own,
// the //runner:vm and //runner:fcvm programs, their output and exit codes,
// `inspect` as JSON, HTTP to published ports; whatever a test leaves
// running is killed and removed in TearDown.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/subprocess.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace fcvm::testing {

// Set by FcvmTestMain from argv: <runner/vm> <runner/fcvm>.
extern std::string g_vm, g_fcvm;

uint16_t FreePort();

class FcvmTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  struct Result {
    int code = -1;
    std::string out, err;
  };
  Result Exec(std::vector<std::string> argv, absl::Duration timeout);
  Result Fcvm(std::vector<std::string> args,
              absl::Duration timeout = absl::Minutes(2));
  // The VM's state as `fcvm inspect` prints it (empty if none).
  google::protobuf::Struct Inspect(const std::string& name);
  static std::string Field(const google::protobuf::Struct& s,
                           const std::string& key);
  // Remembers the VM's QEMU, so TearDown can kill it if it is left.
  void Remember(const google::protobuf::Struct& state);
  // The names `fcvm ls --json` lists.
  absl::StatusOr<std::vector<std::string>> Names();
  // GET / from ip:port.
  absl::StatusOr<std::string> Get(const std::string& ip, uint16_t port);
  // Starts `argv` (a foreground `run`, output discarded) and waits (up to
  // 8 minutes) until VM `name` is RUNNING; `state` gets what inspect said
  // last, and the VM's QEMU is remembered. The runner, or why not.
  absl::StatusOr<Subprocess> StartUntilRunning(std::vector<std::string> argv,
                                               const std::string& name,
                                               google::protobuf::Struct* state);

  std::string state_;
  std::vector<std::pair<pid_t, uint64_t>> vmms_;
};

// main(): parses the two paths, then RUN_ALL_TESTS.
int FcvmTestMain(int argc, char** argv);
// The same in a network namespace of the test's own with loopback up (it
// goes with the process): for tests whose VMs get TAPs and nftables rules.
// Needs root.
int FcvmTestMainInOwnNetns(int argc, char** argv);

}  // namespace fcvm::testing

#endif  // FCVM_TESTS_RUNNER_FCVM_FIXTURE_H_
