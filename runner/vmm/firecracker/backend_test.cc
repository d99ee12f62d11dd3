// The Firecracker backend against the stand-in firecracker
// (testing/standin_firecracker): Firecracker's API, checked against its
// OpenAPI spec, with the VM under QEMU.
//   backend_test <standin_firecracker> <guest kernel> <firecracker spec>
#include "runner/vmm/firecracker/backend.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/client.h"

namespace fcvm::runner::firecracker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string g_standin, g_kernel, g_spec;

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fcvm-fc-backend.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    log_ = dir_ + "/requests.log";
    setenv("FCVM_STANDIN_LOG", log_.c_str(), 1);
    setenv("FCVM_STANDIN_SPEC", g_spec.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  VmSpec Spec(bool nic = true) {
    VmSpec spec;
    spec.set_name("fc");
    spec.set_arch(HostArchName());
    spec.set_kernel(g_kernel);
    // No root filesystem: the kernel panics, and panic=0 keeps it there
    // (the VM stays up for the test).
    spec.set_boot_args("root=/dev/fcvm-none panic=0");
    spec.add_disks()->set_path("/dev/null");
    spec.mutable_disks(0)->set_read_only(true);
    spec.set_vcpus(1);
    spec.set_memory_mib(128);
    if (nic) spec.add_nics()->set_tap("fc-00000000");
    spec.mutable_plan()->set_image("nginx");
    return spec;
  }
  static std::string HostArchName() {
#if defined(__aarch64__)
    return "aarch64";
#else
    return "x86_64";
#endif
  }
  std::vector<std::string> Requests() {
    std::vector<std::string> lines;
    for (absl::string_view line :
         absl::StrSplit(ReadFile(log_).value_or(""), '\n', absl::SkipEmpty())) {
      const size_t second = line.find(' ', line.find(' ') + 1);
      lines.push_back(std::string(line.substr(0, second)));
    }
    return lines;
  }
  std::string State() {
    absl::StatusOr<std::string> info =
        ApiClient(ApiSocket(dir_)).Send({"GET", "/", ""});
    return info.ok() ? *info : std::string(info.status().message());
  }
  std::string dir_, log_;
};

TEST_F(BackendTest, ConfiguresInFirecrackersOrderThenStarts) {
  FirecrackerVmm vmm(g_standin);
  // Without a NIC (no TAP here): the plan rides on the command line.
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(/*nic=*/false), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_THAT(Requests(),
              ElementsAre("GET /", "PUT /machine-config", "PUT /boot-source",
                          "PUT /drives/vda", "PUT /entropy", "PUT /actions"));
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr(R"(PUT /actions {"action_type":"InstanceStart"})"));
  EXPECT_THAT(State(), HasSubstr(R"("state":"Running")"));
  vmm.ForceStop(*process, dir_);
  EXPECT_TRUE(process->finished());
}

// Firecracker has no request that ends a VM: SendCtrlAltDel is x86-only
// and fcvm-init takes it as one more graceful stop. ForceStop kills.
TEST_F(BackendTest, ForceStopKillsAndSendsNoCtrlAltDel) {
  FirecrackerVmm vmm(g_standin);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(false), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  vmm.ForceStop(*process, dir_);
  ASSERT_TRUE(process->finished());
  EXPECT_THAT(ReadFile(log_).value_or(""), Not(HasSubstr("SendCtrlAltDel")));
}

TEST_F(BackendTest, PauseAndResumeArePatchVm) {
  FirecrackerVmm vmm(g_standin);
  ASSERT_TRUE(vmm.Capabilities().pause);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(false), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(vmm.Pause(dir_).ok());
  EXPECT_THAT(State(), HasSubstr(R"("state":"Paused")"));
  ASSERT_TRUE(vmm.Resume(dir_).ok());
  EXPECT_THAT(State(), HasSubstr(R"("state":"Running")"));
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr(R"(PATCH /vm {"state":"Paused"})"));
  vmm.ForceStop(*process, dir_);
}

TEST_F(BackendTest, ARefusedRequestStopsFirecrackerAndSaysWhy) {
  // Firecracker refuses pre-boot resources once the VM runs; the client
  // names the request and Firecracker's reason, never the body.
  FirecrackerVmm vmm(g_standin);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(false), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::string> late =
      ApiClient(ApiSocket(dir_))
          .Send({"PUT", "/machine-config",
                 R"({"vcpu_count":1,"mem_size_mib":64})"});
  ASSERT_FALSE(late.ok());
  EXPECT_THAT(late.status().message(),
              HasSubstr("Firecracker refused PUT /machine-config (HTTP 400): "
                        "The requested operation is not supported after "
                        "starting the microVM."));
  // And the body is not in the message: it may hold the plan's secrets.
  EXPECT_THAT(late.status().message(), Not(HasSubstr("mem_size_mib")));
  vmm.ForceStop(*process, dir_);
}

TEST_F(BackendTest, ASpecFirecrackerCannotTakeStartsNothing) {
  VmSpec spec = Spec();
  spec.set_vcpus(3);
  absl::StatusOr<Subprocess> process =
      FirecrackerVmm(g_standin).Start(spec, dir_);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("3 vCPUs"));
  EXPECT_TRUE(Requests().empty());
}

TEST_F(BackendTest, NoFirecrackerBinaryIsNamed) {
  absl::StatusOr<Subprocess> process =
      FirecrackerVmm("/nonexistent/firecracker").Start(Spec(), dir_);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(),
              HasSubstr("/nonexistent/firecracker"));
}

// A snapshot is PUT /snapshot/create of the paused VM: the stand-in, as
// Firecracker, refuses it while the VM runs, and writes both files.
TEST_F(BackendTest, SnapshotIsPutSnapshotCreateOfThePausedVm) {
  FirecrackerVmm vmm(g_standin);
  ASSERT_TRUE(vmm.Capabilities().snapshot);
  ASSERT_TRUE(vmm.Capabilities().restore_uffd);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(false), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string snapshot = dir_ + "/snap";
  ASSERT_EQ(mkdir(snapshot.c_str(), 0700), 0);
  absl::StatusOr<SnapshotReport> running = vmm.Snapshot(dir_, snapshot);
  ASSERT_FALSE(running.ok());
  EXPECT_THAT(running.status().message(), HasSubstr("/snapshot/create"));
  EXPECT_THAT(running.status().message(), HasSubstr("must be paused"));
  ASSERT_TRUE(vmm.Pause(dir_).ok());
  absl::StatusOr<SnapshotReport> taken = vmm.Snapshot(dir_, snapshot);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->memory_method, "written by Firecracker");
  struct stat st;
  ASSERT_EQ(stat((snapshot + "/memory").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 128 << 20);
  ASSERT_EQ(stat((snapshot + "/vmstate").c_str(), &st), 0);
  EXPECT_GT(st.st_size, 1000);
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr(absl::StrCat(R"(PUT /snapshot/create {"snapshot_path":")",
                                     snapshot, R"(/vmstate","mem_file_path":")",
                                     snapshot, R"(/memory","snapshot_type":"Full"})")));
  vmm.ForceStop(*process, dir_);
}

TEST_F(BackendTest, RestoreRefusesWhatItCannotDoBeforeStartingAnything) {
  FirecrackerVmm vmm(g_standin);
  RestoreSource uffd{dir_, MemoryBackend::kUffd, ""};
  absl::StatusOr<Subprocess> no_socket = vmm.Restore(Spec(), dir_, uffd);
  EXPECT_EQ(no_socket.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_socket.status().message(), HasSubstr("no memory server"));
  RestoreSource file{dir_, MemoryBackend::kFile, ""};
  absl::StatusOr<Subprocess> no_nic = vmm.Restore(Spec(false), dir_, file);
  EXPECT_EQ(no_nic.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_nic.status().message(), HasSubstr("kernel command line"));
  EXPECT_TRUE(Requests().empty());
}

// A load Firecracker refuses ends the restore there: no MMDS, no resume,
// no process left; the error names the snapshot and Firecracker's reason.
TEST_F(BackendTest, ARefusedLoadEndsTheRestoreAndSaysWhy) {
  FirecrackerVmm vmm(g_standin);
  pid_t started = 0;
  RestoreSource source{dir_ + "/no-such-snapshot", MemoryBackend::kFile, "",
                       [&](pid_t pid) { started = pid; }};
  absl::StatusOr<Subprocess> restored = vmm.Restore(Spec(), dir_, source);
  ASSERT_FALSE(restored.ok());
  EXPECT_THAT(restored.status().message(),
              HasSubstr("restoring " + dir_ + "/no-such-snapshot"));
  EXPECT_THAT(restored.status().message(), HasSubstr("Load snapshot error"));
  EXPECT_GT(started, 0);
  EXPECT_NE(kill(started, 0), 0) << "the VMM was left running";
  const std::string log = ReadFile(log_).value_or("");
  EXPECT_THAT(log, HasSubstr(R"("network_overrides":[{"iface_id":"eth0",)"
                             R"("host_dev_name":"fc-00000000"}])"));
  EXPECT_EQ(Requests().back(), "PUT /snapshot/load");
  EXPECT_THAT(log, Not(HasSubstr("PUT /mmds ")));
  EXPECT_EQ(vmm.GuestBlockDevice(2), "/dev/vdc");
}

}  // namespace
}  // namespace fcvm::runner::firecracker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 4) return 2;
  char cwd[4096];
  const std::string here = getcwd(cwd, sizeof(cwd));
  fcvm::runner::firecracker::g_standin = here + "/" + argv[1];
  fcvm::runner::firecracker::g_kernel = here + "/" + argv[2];
  fcvm::runner::firecracker::g_spec = here + "/" + argv[3];
  return RUN_ALL_TESTS();
}
