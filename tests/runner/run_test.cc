// `fcvm run` end to end over every target: QEMU (TCG here) with x86_64
// and aarch64 guests, user-mode networking; and the stand-in firecracker
// (runner_standin_test: Firecracker's API checked against its spec, the
// plan through MMDS, a TAP in a network namespace of the test's own). Real
// kernel, base.ext4, agent and images. A detached run serves its published
// port; ls/inspect/logs show it; pause stops it answering and resume
// brings it back; stop leaves no process or socket; rm leaves no disk. A
// runner killed with SIGKILL leaves its VM running, and gc cleans that up.
//   run_test [--targets=qemu|standin] <vm_x86_64> <vm_aarch64> <fcvm>
//            <standin firecracker> <firecracker spec>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/state/process.h"
#include "runner/vmm/kvm.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using RunTest = FcvmTest;

TEST_P(RunTest, DetachedRunServesListsPausesStopsAndRemoves) {
  const uint16_t port = FreePort();
  const absl::Time start = absl::Now();
  Result run = Exec(Run({"-d", "--name", "web", "-p",
                         absl::StrCat(port, ":8080"), "busybox-httpd"}),
                    absl::Minutes(8));
  std::cout << "fcvm run -d: " << absl::FormatDuration(absl::Now() - start)
            << "\n"
            << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "web\n");
  EXPECT_THAT(run.err, HasSubstr(absl::StrCat("127.0.0.1:", port)));
  google::protobuf::Struct state = Inspect("web");
  Remember(state);
  EXPECT_EQ(Field(state, "phase"), "RUNNING");
  EXPECT_EQ(Field(state, "owner_alive"), "true");
  EXPECT_EQ(Field(state, "backend"), GetParam().backend);

  // The page, through the published port.
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));

  Result ls = Fcvm({"ls", "--json"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  google::protobuf::ListValue all;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ls.out, &all).ok())
      << ls.out;
  ASSERT_EQ(all.values_size(), 1);
  EXPECT_THAT(Fcvm({"ls"}).out,
              HasSubstr(absl::StrCat("127.0.0.1:", port, "->8080/tcp")));
  // busybox httpd -v logs each request on stderr: the container's output.
  EXPECT_THAT(LogsOnceTheyHold("web", "response:200"),
              HasSubstr("response:200"));
  // The plan came the backend's way: fw_cfg under QEMU; under Firecracker,
  // MMDS V2, filled with the runner's own PUT /mmds.
  EXPECT_THAT(
      Fcvm({"logs", "--console", "web"}).out,
      HasSubstr(GetParam().backend == "qemu" ? R"("planSource":"fw_cfg")"
                                             : R"("planSource":"mmds")"));

  // Paused: the vCPUs stop, the port does not answer; resumed: it does.
  Result paused = Fcvm({"pause", "web"});
  ASSERT_EQ(paused.code, 0) << paused.err;
  EXPECT_EQ(Field(Inspect("web"), "phase"), "PAUSED");
  EXPECT_THAT(Fcvm({"ls"}).out, HasSubstr("paused"));
  EXPECT_FALSE(Get("127.0.0.1", port, absl::Seconds(2)).ok())
      << "a paused VM answered";
  Result resumed = Fcvm({"resume", "web"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(Field(Inspect("web"), "phase"), "RUNNING");
  page = Get("127.0.0.1", port, absl::Seconds(30));
  ASSERT_TRUE(page.ok()) << page.status();

  // Not removable while it runs.
  EXPECT_THAT(Fcvm({"rm", "web"}).err, HasSubstr("is running"));

  Result stop = Fcvm({"stop", "web"}, absl::Minutes(3));
  ASSERT_EQ(stop.code, 0) << stop.err;
  state = Inspect("web");
  EXPECT_EQ(Field(state, "phase"), "EXITED");
  EXPECT_EQ(Field(state, "owner_alive"), "false");
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks)) << "VMM " << pid;
  }
  const std::string dir = Field(state, "dir");
  for (const char* socket : {"/qmp.sock", "/api.sock", "/control.sock"}) {
    EXPECT_NE(access((dir + socket).c_str(), F_OK), 0) << socket << " left";
  }
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";
  EXPECT_THAT(Fcvm({"pause", "web"}).err, HasSubstr("is not running"));

  ASSERT_EQ(Fcvm({"rm", "web"}).code, 0);
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << "directory (disk) left";
  EXPECT_THAT(Fcvm({"inspect", "web"}).err, HasSubstr("no VM named 'web'"));
}

TEST_P(RunTest, GcCleansUpAfterARunnerKilledWithSigkill) {
  const uint16_t port = FreePort();
  std::string progress;
  absl::StatusOr<Subprocess> runner = StartUntil(
      Run({"--name", "fg", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"}),
      "fg", &progress);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(Get("127.0.0.1", port).ok());
  const std::string dir = Field(Inspect("fg"), "dir");

  // The runner alone (not its process group): the VMM is left behind.
  ASSERT_EQ(kill(runner->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner->Wait(absl::Seconds(10)).ok());
  ASSERT_FALSE(vmms_.empty());
  EXPECT_TRUE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second))
      << "the VMM died with its runner: nothing for gc to do";
  EXPECT_THAT(Fcvm({"ls"}).out, HasSubstr("dead (fcvm gc)"));

  Result gc = Fcvm({"gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_THAT(gc.out,
              HasSubstr(absl::StrCat("removed fg: VMM pid ", vmms_[0].first)));
  EXPECT_FALSE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second));
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";
  EXPECT_THAT(Fcvm({"ls", "--json"}).out, HasSubstr("[]"));
}

// -v: a host directory, copied into an ext4 image, mounted read-only where
// httpd serves from; given relative to where the user was (bazel run
// starts us elsewhere and says where in BUILD_WORKING_DIRECTORY).
TEST_P(RunTest, ADirectoryVolumeIsWhatTheContainerServes) {
  const std::string www = state_ + "/www";
  ASSERT_EQ(mkdir(www.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomically(www + "/index.html", "from a volume\n").ok());
  setenv("BUILD_WORKING_DIRECTORY", state_.c_str(), 1);
  const uint16_t port = FreePort();
  Result run =
      Exec(Run({"-d", "--name", "vol", "-p", absl::StrCat(port, ":8080"), "-v",
                "www:/srv/www:ro", "busybox-httpd"}),
           absl::Minutes(8));
  unsetenv("BUILD_WORKING_DIRECTORY");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr(absl::StrCat(
                           "volume ", www,
                           " -> /srv/www (copy of a directory, /dev/vdd, "
                           "read-only)")));
  Remember(Inspect("vol"));
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(*page, "from a volume\n");
  ASSERT_EQ(Fcvm({"rm", "-f", "vol"}, absl::Minutes(3)).code, 0);
}

// What the guest or the host would refuse is refused before anything is
// created, in seconds, not after a boot.
TEST_P(RunTest, RefusalsComeBeforeAnythingIsCreated) {
  const absl::Time start = absl::Now();
  Result bad_name =
      Exec(Run({"-d", "--name", "my_vm", "busybox-httpd"}), absl::Minutes(1));
  EXPECT_EQ(bad_name.code, 1);
  EXPECT_THAT(bad_name.err, HasSubstr("bad VM name 'my_vm'"));
  const std::string www = state_ + "/rw";
  ASSERT_EQ(mkdir(www.c_str(), 0755), 0);
  Result writable = Exec(Run({"-d", "-v", www + ":/srv/www", "busybox-httpd"}),
                         absl::Minutes(1));
  EXPECT_EQ(writable.code, 1);
  EXPECT_THAT(writable.err, HasSubstr("mount it :ro"));
  EXPECT_TRUE(Names()->empty()) << "a refused run left a VM behind";
  std::cout << "both refused in " << absl::FormatDuration(absl::Now() - start)
            << "\n";
}

// `run -d` waits for its detached supervisor's word over a pipe: if the
// supervisor dies first, run says so at once (it used to poll the state
// for 10 minutes).
TEST_P(RunTest, RunDetachedSaysAtOnceWhenItsSupervisorDies) {
  SubprocessOptions options;
  options.argv = Run({"-d", "--name", "doomed", "busybox-httpd"});
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> run = Subprocess::Start(std::move(options));
  ASSERT_TRUE(run.ok()) << run.status();
  // The supervisor records itself first; then it is killed.
  google::protobuf::Struct state;
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (Field(state, "vmm_pid").empty() || Field(state, "vmm_pid") == "0") {
    ASSERT_LT(absl::Now(), deadline) << "no VMM recorded";
    ASSERT_FALSE(run->finished());
    absl::SleepFor(absl::Milliseconds(20));
    state = Inspect("doomed");
  }
  Remember(state);
  int64_t supervisor = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(state, "supervisor_pid"), &supervisor));
  ASSERT_EQ(kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  const absl::Time killed = absl::Now();
  absl::StatusOr<Subprocess::Output> out =
      run->Communicate("", absl::Minutes(1));
  ASSERT_TRUE(out.ok()) << out.status();
  std::cout << "run -d returned " << absl::FormatDuration(absl::Now() - killed)
            << " after its supervisor was killed\n";
  EXPECT_EQ(out->exit.code, 125);
  EXPECT_THAT(out->stderr_data, HasSubstr("ended without a word"));
  EXPECT_THAT(out->stderr_data, HasSubstr("killed by signal 9"));
  EXPECT_THAT(Fcvm({"ls"}).out, HasSubstr("dead (fcvm gc)"));
  EXPECT_EQ(Fcvm({"gc"}).code, 0);
}

INSTANTIATE_TEST_SUITE_P(Targets, RunTest, ::testing::ValuesIn(Targets()),
                         TargetName);

// What only QEMU's user-mode network does, per guest CPU.
using QemuRunTest = FcvmTest;
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(QemuRunTest);

std::vector<Target> QemuTargets() {
  std::vector<Target> qemu;
  for (const Target& t : Targets()) {
    if (t.backend == "qemu") qemu.push_back(t);
  }
  return qemu;
}

// A published port that is taken: QEMU cannot start, and the error says
// why in QEMU's own words, with the VM named.
TEST_P(QemuRunTest, ATakenPortIsReportedInTheVmmsWords) {
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t length = sizeof(address);
  getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  Result run = Exec(
      Run({"-d", "--name", "busy", "-p",
           absl::StrCat(ntohs(address.sin_port), ":8080"), "busybox-httpd"}),
      absl::Minutes(2));
  close(taken);
  EXPECT_EQ(run.code, 125);
  EXPECT_THAT(run.err, HasSubstr("busy: ended before it was ready"));
  EXPECT_THAT(run.err, HasSubstr("host forwarding"));
  EXPECT_EQ(Field(Inspect("busy"), "phase"), "FAILED");
}

INSTANTIATE_TEST_SUITE_P(Targets, QemuRunTest,
                         ::testing::ValuesIn(QemuTargets()), TargetName);

// The README's main job, as a user runs it on this machine: `bazel run
// //runner:vm -- nginx` in the foreground (no -p: the image's exposed port
// is published on 127.0.0.1), the page fetched from where it says, then
// Ctrl-C.
using MainJobTest = FcvmTest;
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MainJobTest);

std::vector<Target> HostQemu() {
  std::vector<Target> host;
  for (const Target& t : QemuTargets()) {
    if (t.arch == runner::HostArch()) host.push_back(t);
  }
  return host;
}

TEST_P(MainJobTest, NginxInTheForegroundThenCtrlC) {
  std::string progress;
  absl::StatusOr<Subprocess> runner = StartUntil(
      Run({"nginx"}), "", &progress, "guest port 80/tcp is at 127.0.0.1:");
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::cout << progress;
  const std::string marker = "guest port 80/tcp is at 127.0.0.1:";
  const size_t at = progress.find(marker) + marker.size();
  uint32_t port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      progress.substr(at, progress.find('\n', at) - at), &port));
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok() && names->size() == 1);
  Remember(Inspect((*names)[0]));

  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("nginx"));

  // Ctrl-C: the VM stops with its runner.
  ASSERT_TRUE(runner->Signal(SIGINT).ok());
  absl::StatusOr<ExitStatus> exit = runner->Wait(absl::Minutes(2));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString();
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks)) << "QEMU " << pid;
  }
  EXPECT_EQ(Field(Inspect((*names)[0]), "phase"), "EXITED");
  EXPECT_EQ(Fcvm({"rm", (*names)[0]}).code, 0);
}

INSTANTIATE_TEST_SUITE_P(Host, MainJobTest, ::testing::ValuesIn(HostQemu()),
                         TargetName);

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  // The stand-in's TAPs and tables go in a network namespace of our own.
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--targets=standin") {
      return fcvm::testing::FcvmTestMainInOwnNetns(argc, argv);
    }
  }
  return fcvm::testing::FcvmTestMain(argc, argv);
}
