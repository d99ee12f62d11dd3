// The agent's control loop on the host, with a stand-in for podman
// (testing/fake_podman.sh): exit codes, restart policy, SIGTERM, image
// errors, bad plans. The real Podman, kernel and VM: //tests/agent.
#include "agent/agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/report.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string g_fake_podman;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/agent", ++counter);
    for (const std::string& d : {dir_, dir_ + "/bin", dir_ + "/root",
                                 dir_ + "/root/etc", dir_ + "/state"}) {
      ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << d;
    }
    ASSERT_EQ(symlink(g_fake_podman.c_str(), (dir_ + "/bin/podman").c_str()),
              0);
    setenv("PATH", absl::StrCat(dir_, "/bin:/usr/bin:/bin").c_str(), 1);
    setenv("FAKE_PODMAN_DIR", (dir_ + "/state").c_str(), 1);
    options_.cmdline_path = dir_ + "/cmdline";
    options_.sysfs_root = dir_ + "/sys";
    options_.identity.root = dir_ + "/root";
    options_.identity.kernel = false;
    // A Unix socket lives there: TEST_TMPDIR is too deep for sun_path.
    char run_dir[] = "/tmp/fcvm-agent-test.XXXXXX";
    ASSERT_NE(mkdtemp(run_dir), nullptr);
    options_.run_dir = run_dir;
    options_.vsock_port = 1;  // Nothing listens: console only.
    console_path_ = dir_ + "/console";
  }

  void TearDown() override {
    if (!options_.run_dir.empty()) {
      unlink((options_.run_dir + "/notify.sock").c_str());
      rmdir(options_.run_dir.c_str());
    }
  }

  void Plan(absl::string_view json) {
    std::string encoded;
    absl::WebSafeBase64Escape(json, &encoded);
    ASSERT_TRUE(WriteFileAtomically(
                    options_.cmdline_path,
                    absl::StrCat("console=ttyS0 fcvm.plan=", encoded, "\n"))
                    .ok());
  }
  void Behave(const std::string& what, int run = 0) {
    const std::string name =
        run == 0 ? "behaviour" : absl::StrCat("behaviour.", run);
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/state/" + name, what).ok());
  }

  // The agent's exit code; -1 (and a failure) when the console cannot be
  // opened.
  int Run() {
    absl::StatusOr<UniqueFd> console =
        OpenFd(console_path_, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!console.ok()) {
      ADD_FAILURE() << console.status();
      return -1;
    }
    Reporter reporter(console->get());
    return RunAgent(options_, reporter);
  }

  // Runs the agent while the "host" sends SIGTERM once `when` holds.
  // SIGTERM is blocked here, so it waits in the agent's signalfd whichever
  // thread it is sent from (threads inherit the mask).
  int RunAndSigtermWhen(std::function<bool()> when) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, nullptr);
    // The files `when` reads have no change notification short of inotify:
    // a short poll, and a failure of its own if the moment never comes (the
    // agent is still stopped, so the test ends either way).
    bool held = false;
    std::thread host([&] {
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      while (!(held = when()) && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      kill(getpid(), SIGTERM);
    });
    const int code = Run();
    host.join();
    EXPECT_TRUE(held) << "the condition for SIGTERM never held; console:\n"
                      << Console();
    return code;
  }

  std::string Console() { return ReadFile(console_path_).value_or(""); }

  std::vector<AgentEvent> Events() {
    std::vector<AgentEvent> events;
    for (absl::string_view line : absl::StrSplit(Console(), '\n')) {
      std::string kind, payload;
      AgentEvent event;
      if (ParseFrame(line, &kind, &payload) && kind == "status" &&
          google::protobuf::util::JsonStringToMessage(payload, &event).ok()) {
        events.push_back(event);
      }
    }
    return events;
  }
  std::vector<std::string> Kinds() {
    std::vector<std::string> kinds;
    for (const AgentEvent& event : Events()) {
      kinds.push_back(AgentEvent::Kind_Name(event.kind()));
    }
    return kinds;
  }
  AgentEvent Last(AgentEvent::Kind kind) {
    AgentEvent found;
    for (const AgentEvent& event : Events()) {
      if (event.kind() == kind) found = event;
    }
    return found;
  }
  std::string Calls() { return ReadFile(dir_ + "/state/calls").value_or(""); }

  std::string dir_;
  std::string console_path_;
  AgentOptions options_;
};

TEST_F(AgentTest, ContainerExitCodeIsReportedAndReturned) {
  Plan(R"({"image": "fake/image", "env": {"A": "1"}})");
  Behave("exit 3");
  EXPECT_EQ(Run(), 3);
  EXPECT_THAT(Kinds(),
              ElementsAre("AGENT_STARTED", "PLAN_ACCEPTED", "IDENTITY_APPLIED",
                          "IMAGE_READY", "CONTAINER_STARTED", "READY", "EXITED",
                          "POWER_OFF"));
  EXPECT_EQ(Last(AgentEvent::PLAN_ACCEPTED).plan_source(),
            "kernel command line");
  EXPECT_EQ(Last(AgentEvent::EXITED).exit_code(), 3);
  EXPECT_EQ(Last(AgentEvent::POWER_OFF).exit_code(), 3);
  EXPECT_THAT(Console(), HasSubstr("@fcvm out hello from run 1\n"));
  EXPECT_THAT(Console(), HasSubstr("@fcvm err run 1 on stderr\n"));
  EXPECT_THAT(Calls(), HasSubstr("image exists fake/image"));
  EXPECT_THAT(Calls(), HasSubstr("run --name fcvm-workload"));
  EXPECT_THAT(Calls(), HasSubstr("--env A=1 fake/image"));
  // The identity's files: a fresh machine-id, as the plan has none.
  absl::StatusOr<std::string> machine_id =
      ReadFile(dir_ + "/root/etc/machine-id");
  ASSERT_TRUE(machine_id.ok()) << machine_id.status();
  EXPECT_THAT(*machine_id, ::testing::MatchesRegex("[0-9a-f]{32}\n"));
}

TEST_F(AgentTest, RestartOnFailureThenSuccess) {
  Plan(R"({"image": "oci-archive:/dev/vdc", "restart": "RESTART_ON_FAILURE"})");
  Behave("exit 1", 1);
  Behave("exit 0", 2);
  EXPECT_EQ(Run(), 0);
  EXPECT_THAT(Kinds(),
              ElementsAre("AGENT_STARTED", "PLAN_ACCEPTED", "IDENTITY_APPLIED",
                          "IMAGE_READY", "CONTAINER_STARTED", "READY", "EXITED",
                          "RESTARTING", "CONTAINER_STARTED", "READY", "EXITED",
                          "POWER_OFF"));
  EXPECT_THAT(Calls(), HasSubstr("load -q -i /dev/vdc"));
  EXPECT_THAT(Calls(), HasSubstr("--pull=never localhost/fake/image:latest"));
  EXPECT_THAT(Calls(), HasSubstr("start --attach fcvm-workload"));
  EXPECT_EQ(Last(AgentEvent::IMAGE_READY).image(),
            "localhost/fake/image:latest");
}

TEST_F(AgentTest, SigtermStopsTheContainerAndPowersOff) {
  Plan(R"({"image": "fake/image", "stopTimeoutSeconds": 7})");
  Behave("wait");
  EXPECT_EQ(RunAndSigtermWhen(
                [&] { return absl::StrContains(Console(), "\"READY\""); }),
            143);
  EXPECT_THAT(Kinds(), Contains("STOPPING"));
  EXPECT_THAT(Last(AgentEvent::STOPPING).message(),
              HasSubstr("podman stop -t 7"));
  EXPECT_THAT(Calls(), HasSubstr("stop -t 7 fcvm-workload"));
  EXPECT_THAT(Console(), HasSubstr("@fcvm out got SIGTERM\n"));
  EXPECT_EQ(Last(AgentEvent::POWER_OFF).exit_code(), 143);
}

TEST_F(AgentTest, ImageLoadFailureNamesTheImageAndPodmansWords) {
  Plan(R"({"image": "oci-archive:/dev/vdc"})");
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/state/load_fails", "").ok());
  EXPECT_EQ(Run(), 1);
  const AgentEvent error = Last(AgentEvent::ERROR);
  EXPECT_THAT(error.message(), HasSubstr("image oci-archive:/dev/vdc"));
  EXPECT_THAT(error.message(), HasSubstr("status 125"));
  EXPECT_THAT(error.message(), HasSubstr("supported image formats"));
  EXPECT_THAT(Kinds(), ::testing::Not(Contains("CONTAINER_STARTED")));
  EXPECT_EQ(Last(AgentEvent::POWER_OFF).exit_code(), 1);
}

TEST_F(AgentTest, AnImageNotStoredLocallyIsPulled) {
  Plan(R"({"image": "docker.io/library/fake:1"})");
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/state/not_local", "").ok());
  Behave("exit 0");
  EXPECT_EQ(Run(), 0);
  EXPECT_THAT(Calls(), HasSubstr("image exists docker.io/library/fake:1\n"
                                 "pull -q docker.io/library/fake:1\n"));
  // Pulled, so Podman may not be told --pull=never.
  EXPECT_THAT(Calls(), ::testing::Not(HasSubstr("--pull=never")));
  EXPECT_EQ(Last(AgentEvent::IMAGE_READY).message(), "registry");
}

TEST_F(AgentTest, SigtermWhileTheImageLoadsEndsBeforeTheContainerStarts) {
  Plan(R"({"image": "oci-archive:/dev/vdc"})");
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/state/load_slow", "").ok());
  Behave("wait");
  EXPECT_EQ(
      RunAndSigtermWhen([&] { return absl::StrContains(Calls(), "load"); }),
      143);
  EXPECT_THAT(Last(AgentEvent::STOPPING).message(),
              HasSubstr("before the container started"));
  EXPECT_THAT(Calls(), ::testing::Not(HasSubstr("run --name")));
  EXPECT_EQ(Last(AgentEvent::POWER_OFF).exit_code(), 143);
}

TEST_F(AgentTest, NoPlanAnywhereIsAnErrorNotAHang) {
  ASSERT_TRUE(WriteFileAtomically(options_.cmdline_path, "console=ttyS0").ok());
  options_.mmds_interface = "fcvm-no-such-nic";
  EXPECT_EQ(Run(), 1);
  const std::string error = Last(AgentEvent::ERROR).message();
  EXPECT_THAT(error, HasSubstr("no fcvm.plan= on the command line"));
  // Refused at once, naming the missing NIC: MMDS was never tried (waiting
  // for it would end in "no plan from MMDS after N attempts").
  EXPECT_THAT(error, HasSubstr("MMDS is unreachable"));
  EXPECT_THAT(error, HasSubstr("'fcvm-no-such-nic'"));
  EXPECT_THAT(error, ::testing::Not(HasSubstr("attempts")));
  EXPECT_EQ(Last(AgentEvent::POWER_OFF).exit_code(), 1);
}

}  // namespace
}  // namespace fcvm::agent

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) return 2;
  fcvm::agent::g_fake_podman = argv[1];
  if (fcvm::agent::g_fake_podman[0] != '/') {
    char cwd[4096];
    fcvm::agent::g_fake_podman =
        std::string(getcwd(cwd, sizeof(cwd))) + "/" + argv[1];
  }
  return RUN_ALL_TESTS();
}
