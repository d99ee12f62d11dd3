// Boots a guest kernel of //kernel with //images:base_<cpu> (which carries
// fc-agent) under QEMU (KVM where it really works, else TCG) and checks,
// from the host side of the console only, what the agent reports:
// - a plan in fw_cfg runs the busybox-httpd OCI archive from an attached
//   drive: the container's output and the readiness report arrive framed,
//   identity is applied, and "@fcvm stop" on the console stops the
//   container and powers the VM off;
// - a malformed plan (on the kernel command line) is reported as an ERROR
//   naming the field, and the VM powers off instead of hanging;
// - the plan from MMDS V2: the runner's own PUT /mmds request
//   (runner::firecracker::MmdsPlanRequest) into a fake MMDS that is a small
//   copy of Firecracker's (one JSON document, V2 tokens, JSON or IMDS text
//   by Accept), reached by the guest at 169.254.169.254 through QEMU's
//   user-mode network and tcp_bridge, read by the agent at /fcvm/plan; a
//   new generation with dead tokens, as after a snapshot restore,
//   re-identifies the running VM (new token, hostname, clock, entropy,
//   machine-id).
//   agent_boot_test <arch> <kernel> <base.ext4> <busybox-httpd.tar>
//                   <tcp_bridge>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/plan.pb.h"
#include "agent/report.h"
#include "agent/status.pb.h"
#include "agent/testing/mmds_server.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/vmm/firecracker/requests.h"
#include "tests/testing/qemu.h"

namespace fcvm {
namespace {

using ::fcvm::agent::AgentEvent;
using ::fcvm::testing::QemuConsole;
using ::fcvm::testing::QemuSpec;
using ::testing::Contains;
using ::testing::HasSubstr;

std::string g_arch, g_kernel, g_image, g_busybox_httpd, g_tcp_bridge;

QemuSpec Spec(const std::string& accel, const std::string& disk) {
  QemuSpec spec;
  spec.arch = g_arch;
  spec.accel = accel;
  spec.kernel = g_kernel;
  spec.append = "root=/dev/vda ro rootfstype=ext4 init=/sbin/fcvm-init quiet";
  spec.drives = {{g_image, /*read_only=*/true},
                 {disk, false},
                 {g_busybox_httpd, /*read_only=*/true}};
  spec.memory_mib = 1024;
  return spec;
}

// The console as the runner sees it: framed agent lines, split from
// everything else.
struct Frames {
  std::vector<AgentEvent> events;
  std::vector<std::string> out;  // "out <text>" / "err <text>"
};

// Complete lines only: the last one may still be arriving.
Frames Parse(const std::string& console) {
  Frames frames;
  const absl::string_view complete =
      absl::string_view(console).substr(0, console.rfind('\n') + 1);
  for (absl::string_view line : absl::StrSplit(complete, '\n')) {
    std::string kind, payload;
    if (!agent::ParseFrame(line, &kind, &payload)) continue;
    if (kind == "status") {
      AgentEvent event;
      if (google::protobuf::util::JsonStringToMessage(payload, &event).ok()) {
        frames.events.push_back(event);
      }
    } else {
      frames.out.push_back(absl::StrCat(kind, " ", payload));
    }
  }
  return frames;
}

const AgentEvent* Find(const Frames& frames, AgentEvent::Kind kind) {
  for (const AgentEvent& event : frames.events) {
    if (event.kind() == kind) return &event;
  }
  return nullptr;
}

std::string KindMarker(AgentEvent::Kind kind) {
  return absl::StrCat("\"kind\":\"", AgentEvent::Kind_Name(kind), "\"");
}

// Waits for an event of `kind` and the end of its line (the marker is in
// the middle of the JSON; the rest may still be on its way).
[[nodiscard]] absl::Status WaitEvent(QemuConsole& vm, AgentEvent::Kind kind,
                                     absl::Duration timeout) {
  absl::Status status = vm.WaitFor(KindMarker(kind), timeout);
  if (status.ok()) status = vm.WaitFor("\n", absl::Seconds(30));
  return status;
}

// Boots spec(accel) until the agent's first word.
[[nodiscard]] absl::StatusOr<QemuConsole> Boot(
    const std::function<QemuSpec(const std::string&)>& spec,
    std::string* accel_used) {
  return ::fcvm::testing::BootUntil(
      g_arch, spec, KindMarker(AgentEvent::AGENT_STARTED), accel_used);
}

// "@fcvm stop" on the console; the agent stops the container, syncs and
// powers off. Returns the console's frames.
Frames StopAndPowerOff(QemuConsole& vm) {
  EXPECT_TRUE(vm.Send("@fcvm stop\n").ok());
  absl::Status off = WaitEvent(vm, AgentEvent::POWER_OFF, absl::Minutes(3));
  EXPECT_TRUE(off.ok()) << off << "\n---- console ----\n" << vm.output();
  absl::StatusOr<ExitStatus> exit = vm.WaitExit(absl::Minutes(2));
  EXPECT_TRUE(exit.ok() && exit->success()) << exit.status() << "\n"
                                            << vm.output();
  return Parse(vm.output());
}

// Waits for the workload's READY (image load and start take minutes under
// TCG).
void WaitReady(QemuConsole& vm) {
  absl::Status ready = WaitEvent(vm, AgentEvent::READY, absl::Minutes(10));
  ASSERT_TRUE(ready.ok()) << ready << "\n---- console ----\n" << vm.output();
}

class AgentBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string qemu = "qemu-system-" + g_arch;
    if (!::fcvm::InPath(qemu)) {
      GTEST_SKIP() << qemu
                   << " is not installed (tools/bootstrap.sh installs it)";
    }
  }
};

TEST_F(AgentBootTest, RunsBusyboxHttpdPlanFromFwCfg) {
  const std::string disk = ::fcvm::testing::TestTmpDir() + "/writable.img";
  ASSERT_TRUE(::fcvm::testing::MakeBlankDisk(disk, 2ll << 30).ok());
  const std::string plan_path = ::fcvm::testing::TestTmpDir() + "/plan.json";
  std::string entropy;
  absl::Base64Escape(std::string(32, '\x5a'), &entropy);
  const std::string plan = absl::StrCat(R"({
    "image": "oci-archive:/dev/vdc",
    "command": ["/bin/busybox", "sh", "-c",
      "echo container says hello from $(/bin/busybox hostname); exec /bin/busybox httpd -f -v -p 8080 -h /srv/www"],
    "hostname": "agent-test-1",
    "ports": [{"hostPort": 18080, "guestPort": 8080}],
    "readiness": {"httpPath": "/", "timeoutSeconds": 600},
    "stopTimeoutSeconds": 5,
    "generation": "1",
    "hostTimeUnixMs": ")",
                                        absl::ToUnixMillis(absl::Now()),
                                        R"(",
    "entropy": ")",
                                        entropy, R"("
  })");
  ASSERT_TRUE(WriteFileAtomically(plan_path, plan).ok());

  const absl::Time start = absl::Now();
  std::string accel;
  absl::StatusOr<QemuConsole> vm = Boot(
      [&](const std::string& accel) {
        QemuSpec spec = Spec(accel, disk);
        spec.fw_cfg = {{"opt/fcvm/plan", plan_path}};
        return spec;
      },
      &accel);
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_NO_FATAL_FAILURE(WaitReady(*vm));
  const absl::Duration to_ready = absl::Now() - start;
  // The container's first line usually comes before the readiness report,
  // but may trail it a little, or be on its way: read the console until the
  // whole line is there.
  const std::string hello = "@fcvm out container says hello from agent-test-1";
  const absl::Time hello_deadline = absl::Now() + absl::Minutes(1);
  for (;;) {
    const size_t at = vm->output().find(hello);
    if (at != std::string::npos && at + hello.size() < vm->output().size()) {
      break;  // Something (its line end) follows.
    }
    if (absl::Now() > hello_deadline) break;
    if (!vm->WaitFor("\n", absl::Seconds(1)).ok()) break;
  }

  Frames frames = Parse(vm->output());
  const AgentEvent* accepted = Find(frames, AgentEvent::PLAN_ACCEPTED);
  ASSERT_NE(accepted, nullptr) << vm->output();
  EXPECT_EQ(accepted->plan_source(), "fw_cfg");
  EXPECT_EQ(accepted->generation(), 1u);
  const AgentEvent* identity = Find(frames, AgentEvent::IDENTITY_APPLIED);
  ASSERT_NE(identity, nullptr);
  EXPECT_THAT(identity->message(), HasSubstr("hostname agent-test-1"));
  EXPECT_THAT(identity->message(), HasSubstr("entropy 32 bytes"));
  const AgentEvent* image = Find(frames, AgentEvent::IMAGE_READY);
  ASSERT_NE(image, nullptr);
  EXPECT_THAT(image->image(), HasSubstr("fcvm/busybox-httpd:latest"));
  ASSERT_NE(Find(frames, AgentEvent::CONTAINER_STARTED), nullptr);
  const AgentEvent* ready_event = Find(frames, AgentEvent::READY);
  ASSERT_NE(ready_event, nullptr) << vm->output();
  EXPECT_THAT(ready_event->message(),
              HasSubstr("GET http://127.0.0.1:8080/ succeeded"));
  // The container's stdout, framed; its hostname is the plan's.
  EXPECT_THAT(frames.out,
              Contains("out container says hello from agent-test-1"));
  EXPECT_EQ(Find(frames, AgentEvent::ERROR), nullptr) << vm->output();

  // Stop request on the console: podman stop, sync, power off.
  frames = StopAndPowerOff(*vm);
  const AgentEvent* stopping = Find(frames, AgentEvent::STOPPING);
  ASSERT_NE(stopping, nullptr);
  EXPECT_THAT(stopping->message(), HasSubstr("stop request on the console"));
  ASSERT_NE(Find(frames, AgentEvent::EXITED), nullptr);

  // Guest-side timings for bench/RESULTS.md.
  std::cerr << "accel=" << accel << " QEMU start to READY " << to_ready << "\n";
  for (const AgentEvent& event : frames.events) {
    std::cerr << "  uptime " << event.uptime_ms() << " ms  "
              << AgentEvent::Kind_Name(event.kind()) << "  took "
              << event.duration_us() << " us  " << event.message() << "\n";
  }
}

TEST_F(AgentBootTest, MalformedPlanIsReportedAndTheVmPowersOff) {
  const std::string disk = ::fcvm::testing::TestTmpDir() + "/malformed.img";
  ASSERT_TRUE(::fcvm::testing::MakeBlankDisk(disk, 1ll << 30).ok());
  std::string encoded;
  absl::WebSafeBase64Escape(R"({"image": "x", "imagee": "typo"})", &encoded);
  std::string accel;
  absl::StatusOr<QemuConsole> vm = Boot(
      [&](const std::string& accel) {
        QemuSpec spec = Spec(accel, disk);
        spec.append += " fcvm.plan=" + encoded;
        return spec;
      },
      &accel);
  ASSERT_TRUE(vm.ok()) << vm.status();
  absl::Status off = WaitEvent(*vm, AgentEvent::POWER_OFF, absl::Minutes(3));
  ASSERT_TRUE(off.ok()) << off << "\n---- console ----\n" << vm->output();
  absl::StatusOr<ExitStatus> exit = vm->WaitExit(absl::Minutes(2));
  ASSERT_TRUE(exit.ok()) << exit.status() << "\n" << vm->output();
  const Frames frames = Parse(vm->output());
  const AgentEvent* error = Find(frames, AgentEvent::ERROR);
  ASSERT_NE(error, nullptr) << vm->output();
  EXPECT_THAT(error->message(), HasSubstr("plan (from kernel command line)"));
  EXPECT_THAT(error->message(), HasSubstr("imagee"));
  const AgentEvent* power_off = Find(frames, AgentEvent::POWER_OFF);
  ASSERT_NE(power_off, nullptr) << vm->output();
  EXPECT_EQ(power_off->exit_code(), 1);
  EXPECT_EQ(Find(frames, AgentEvent::CONTAINER_STARTED), nullptr);
}

TEST_F(AgentBootTest, PlanFromMmdsAndANewGenerationReidentifies) {
  auto mmds = agent::testing::FakeMmds::Start();
  ASSERT_TRUE(mmds.ok()) << mmds.status();
  auto plan = [](int generation, const std::string& hostname,
                 absl::Time host_time) {
    agent::Plan plan;
    plan.set_image("oci-archive:/dev/vdc");
    plan.set_hostname(hostname);
    plan.add_ports()->set_guest_port(8080);
    plan.set_generation(generation);
    plan.set_host_time_unix_ms(absl::ToUnixMillis(host_time));
    plan.set_entropy(std::string(64, static_cast<char>('a' + generation)));
    plan.mutable_network()->add_dns("169.254.0.3");
    plan.set_stop_timeout_seconds(5);
    return plan;
  };
  // The host's side, as the runner does it on Firecracker: its own request,
  // taken as Firecracker's API takes it (the whole document replaced).
  auto put = [&](const agent::Plan& plan) {
    absl::StatusOr<runner::firecracker::ApiRequest> request =
        runner::firecracker::MmdsPlanRequest(plan);
    ASSERT_TRUE(request.ok()) << request.status();
    const absl::Status taken =
        (*mmds)->HostRequest(request->method, request->path, request->body);
    ASSERT_TRUE(taken.ok()) << taken;
  };
  ASSERT_NO_FATAL_FAILURE(put(plan(1, "clone-a", absl::Now())));

  const std::string disk = ::fcvm::testing::TestTmpDir() + "/mmds.img";
  ASSERT_TRUE(::fcvm::testing::MakeBlankDisk(disk, 2ll << 30).ok());
  std::string accel;
  absl::StatusOr<QemuConsole> vm = Boot(
      [&](const std::string& accel) {
        QemuSpec spec = Spec(accel, disk);
        // The guest's eth0 on a user-mode network whose only way out is
        // 169.254.169.254:80 -> tcp_bridge -> the fake MMDS on loopback.
        spec.user_net = QemuSpec::UserNet{
            "169.254.0.0/16,host=169.254.0.1,dns=169.254.0.3",
            "169.254.169.254:80",
            absl::StrCat(g_tcp_bridge, " 127.0.0.1 ", (*mmds)->port())};
        return spec;
      },
      &accel);
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_NO_FATAL_FAILURE(WaitReady(*vm));
  Frames frames = Parse(vm->output());
  const AgentEvent* accepted = Find(frames, AgentEvent::PLAN_ACCEPTED);
  ASSERT_NE(accepted, nullptr);
  EXPECT_EQ(accepted->plan_source(), "mmds");
  const int tokens_before = (*mmds)->token_requests();
  EXPECT_GE(tokens_before, 1);

  // What the host does after restoring a snapshot: MMDS repopulated with a
  // higher generation; the old VM's tokens are dead.
  (*mmds)->ExpireTokens();
  ASSERT_NO_FATAL_FAILURE(
      put(plan(2, "clone-b", absl::Now() + absl::Hours(1))));
  absl::Status reidentified =
      WaitEvent(*vm, AgentEvent::REIDENTIFIED, absl::Minutes(2));
  ASSERT_TRUE(reidentified.ok()) << reidentified << "\n---- console ----\n"
                                 << vm->output();
  frames = Parse(vm->output());
  const AgentEvent* event = Find(frames, AgentEvent::REIDENTIFIED);
  ASSERT_NE(event, nullptr);
  EXPECT_EQ(event->generation(), 2u);
  EXPECT_THAT(event->message(), HasSubstr("generation 1 -> 2"));
  EXPECT_THAT(event->message(), HasSubstr("hostname clone-b"));
  EXPECT_THAT(event->message(), HasSubstr("entropy 64 bytes"));
  EXPECT_THAT(event->message(), HasSubstr("clock stepped"));
  EXPECT_THAT(event->message(), HasSubstr("machine-id "));
  EXPECT_GT((*mmds)->token_requests(), tokens_before);
  EXPECT_GE((*mmds)->unauthorized(), 1);

  StopAndPowerOff(*vm);
  std::cerr << "accel=" << accel
            << " re-identification: " << event->duration_us()
            << " us from the poll that saw it (" << event->message() << ")\n";
}

}  // namespace
}  // namespace fcvm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 6) {
    std::cerr << "usage: " << argv[0]
              << " <arch> <kernel> <base.ext4> <busybox-httpd.tar>"
                 " <tcp_bridge>\n";
    return 2;
  }
  fcvm::g_tcp_bridge = argv[5];
  fcvm::g_arch = argv[1];
  fcvm::g_kernel = argv[2];
  fcvm::g_image = argv[3];
  fcvm::g_busybox_httpd = argv[4];
  return RUN_ALL_TESTS();
}
