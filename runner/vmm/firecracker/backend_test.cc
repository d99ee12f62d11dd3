// The Firecracker backend's sequence against a stand-in firecracker that
// serves the API on the socket it is given (testing/fake_firecracker).
#include "runner/vmm/firecracker/backend.h"

#include <stdlib.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::runner::firecracker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string g_fake;

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fcvm-fc-backend.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    log_ = dir_ + "/requests.log";
    setenv("FAKE_FIRECRACKER_LOG", log_.c_str(), 1);
    unsetenv("FAKE_FIRECRACKER_REFUSE");
  }
  void TearDown() override {
    unlink(log_.c_str());
    unlink((dir_ + "/api.sock").c_str());
    rmdir(dir_.c_str());
  }
  VmSpec Spec() {
    VmSpec spec;
    spec.set_name("fc");
    spec.set_arch("x86_64");
    spec.set_kernel("/k/vmlinux");
    spec.add_disks()->set_path("/b/base.ext4");
    spec.set_vcpus(2);
    spec.set_memory_mib(256);
    spec.add_nics()->set_tap("fc-00000000");
    spec.mutable_plan()->set_image("nginx");
    return spec;
  }
  std::vector<std::string> Requests() {
    std::vector<std::string> lines;
    for (absl::string_view line :
         absl::StrSplit(ReadFile(log_).value_or(""), '\n', absl::SkipEmpty())) {
      lines.push_back(std::string(line.substr(0, line.find(' ', 4))));
    }
    return lines;
  }
  std::string dir_, log_;
};

TEST_F(BackendTest, ConfiguresEverythingThenStartsThenStopsOnTheConsole) {
  FirecrackerVmm vmm(g_fake);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(), dir_);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_THAT(Requests(),
              ElementsAre("GET /", "PUT /machine-config", "PUT /boot-source",
                          "PUT /drives/vda", "PUT /network-interfaces/eth0",
                          "PUT /mmds/config", "PUT /mmds", "PUT /entropy",
                          "PUT /actions"));
  EXPECT_THAT(ReadFile(log_).value_or(""),
              HasSubstr(R"(PUT /actions {"action_type":"InstanceStart"})"));
  ASSERT_TRUE(
      WriteAll(process->stdin_pipe().get(), "@fcvm stop\n", "stdin").ok());
  absl::StatusOr<ExitStatus> exit = process->Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(exit->success());
}

TEST_F(BackendTest, ARefusedRequestStopsFirecrackerAndSaysWhy) {
  setenv("FAKE_FIRECRACKER_REFUSE", "/drives/vda", 1);
  FirecrackerVmm vmm(g_fake);
  absl::StatusOr<Subprocess> process = vmm.Start(Spec(), dir_);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(),
              HasSubstr("Firecracker refused PUT /drives/vda (HTTP 400): fake: "
                        "refused as asked"));
  // Nothing after the refusal; no InstanceStart.
  EXPECT_THAT(Requests().back(), StartsWith("PUT /drives/vda"));
  EXPECT_NE(access((dir_ + "/api.sock").c_str(), F_OK), 0);
}

TEST_F(BackendTest, ASpecFirecrackerCannotTakeStartsNothing) {
  VmSpec spec = Spec();
  spec.set_vcpus(3);
  absl::StatusOr<Subprocess> process = FirecrackerVmm(g_fake).Start(spec, dir_);
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

}  // namespace
}  // namespace fcvm::runner::firecracker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) return 2;
  char cwd[4096];
  fcvm::runner::firecracker::g_fake =
      std::string(getcwd(cwd, sizeof(cwd))) + "/" + argv[1];
  return RUN_ALL_TESTS();
}
