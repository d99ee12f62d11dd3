// `fcvm run` end to end under QEMU (TCG here), rootless networking: the
// //runner:vm program boots the busybox-httpd image with a published port;
// a request from the host gets the page; ls/inspect/logs show it; stop
// leaves no process or socket; rm leaves no disk. A runner killed with
// SIGKILL leaves its VM running, and `fcvm gc` cleans that up.
//   run_test <runner/vm> <runner/fcvm>
#include <netinet/in.h>
#include <poll.h>
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
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using RunTest = FcvmTest;

TEST_F(RunTest, DetachedRunServesListsLogsStopsAndRemoves) {
  const uint16_t port = FreePort();
  const absl::Time start = absl::Now();
  Result run = Exec({g_vm, "-d", "--name", "web", "-p",
                     absl::StrCat(port, ":8080"), "busybox-httpd"},
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
  EXPECT_EQ(all.values(0).struct_value().fields().at("name").string_value(),
            "web");
  EXPECT_THAT(Fcvm({"ls"}).out,
              HasSubstr(absl::StrCat("127.0.0.1:", port, "->8080/tcp")));
  // busybox httpd -v logs each request on stderr: the container's output.
  EXPECT_THAT(Fcvm({"logs", "web"}).out, HasSubstr("response:200"));
  EXPECT_THAT(Fcvm({"logs", "--console", "web"}).out,
              HasSubstr("@fcvm status"));

  // Not removable while it runs.
  EXPECT_THAT(Fcvm({"rm", "web"}).err, HasSubstr("is running"));

  Result stop = Fcvm({"stop", "web"}, absl::Minutes(3));
  ASSERT_EQ(stop.code, 0) << stop.err;
  state = Inspect("web");
  EXPECT_EQ(Field(state, "phase"), "EXITED");
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks)) << "QEMU " << pid;
  }
  const std::string dir = Field(state, "dir");
  EXPECT_NE(access((dir + "/qmp.sock").c_str(), F_OK), 0) << "socket left";
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";

  ASSERT_EQ(Fcvm({"rm", "web"}).code, 0);
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << "directory (disk) left";
  EXPECT_THAT(Fcvm({"inspect", "web"}).err, HasSubstr("no VM named 'web'"));
}

TEST_F(RunTest, GcCleansUpAfterARunnerKilledWithSigkill) {
  const uint16_t port = FreePort();
  google::protobuf::Struct state;
  absl::StatusOr<Subprocess> runner =
      StartUntilRunning({g_vm, "--name", "fg", "--accel", "tcg", "-p",
                         absl::StrCat(port, ":8080"), "busybox-httpd"},
                        "fg", &state);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(Get("127.0.0.1", port).ok());

  // The runner alone (not its process group): QEMU is left behind.
  ASSERT_EQ(kill(runner->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner->Wait(absl::Seconds(10)).ok());
  ASSERT_FALSE(vmms_.empty());
  EXPECT_TRUE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second))
      << "QEMU died with its runner: nothing for gc to do";
  EXPECT_THAT(Fcvm({"ls"}).out, HasSubstr("dead (fcvm gc)"));

  Result gc = Fcvm({"gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_THAT(gc.out, HasSubstr("removed fg"));
  EXPECT_FALSE(runner::SameProcessAlive(vmms_[0].first, vmms_[0].second));
  EXPECT_NE(access(Field(state, "dir").c_str(), F_OK), 0);
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";
  EXPECT_THAT(Fcvm({"ls", "--json"}).out, HasSubstr("[]"));
}

// A published port that is taken: QEMU cannot start, and the error says
// why in QEMU's own words, with the VM named.
TEST_F(RunTest, ATakenPortIsReportedInTheVmmsWords) {
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t length = sizeof(address);
  getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  Result run =
      Exec({g_vm, "-d", "--accel", "tcg", "--name", "busy", "-p",
            absl::StrCat(ntohs(address.sin_port), ":8080"), "busybox-httpd"},
           absl::Minutes(2));
  close(taken);
  EXPECT_EQ(run.code, 125);
  EXPECT_THAT(run.err, HasSubstr("busy: ended before it was ready"));
  EXPECT_THAT(run.err, HasSubstr("host forwarding"));
  EXPECT_EQ(Field(Inspect("busy"), "phase"), "FAILED");
}

// -v: a host directory, copied into an ext4 image, mounted read-only where
// httpd serves from.
TEST_F(RunTest, ADirectoryVolumeIsWhatTheContainerServes) {
  const std::string www = state_ + "/www";
  ASSERT_EQ(mkdir(www.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomically(www + "/index.html", "from a volume\n").ok());
  // A writable directory is refused before anything boots.
  Result refused = Exec({g_vm, "-d", "-v", www + ":/srv/www", "busybox-httpd"},
                        absl::Minutes(1));
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("mount it :ro"));
  EXPECT_TRUE(Names()->empty()) << "a refused run left a VM behind";

  const uint16_t port = FreePort();
  Result run = Exec({g_vm, "-d", "--accel", "tcg", "--name", "vol", "-p",
                     absl::StrCat(port, ":8080"), "-v", www + ":/srv/www:ro",
                     "busybox-httpd"},
                    absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.err,
              HasSubstr("(copy of a directory) at /srv/www, read-only"));
  Remember(Inspect("vol"));
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(*page, "from a volume\n");
  ASSERT_EQ(Fcvm({"rm", "-f", "vol"}, absl::Minutes(3)).code, 0);
}

// The README's main job, as a user runs it: `bazel run //runner:vm --
// nginx` in the foreground (no -p: the image's exposed port is published on
// 127.0.0.1), the page fetched from where it says, then Ctrl-C.
TEST_F(RunTest, MainJobNginxInTheForegroundThenCtrlC) {
  SubprocessOptions options;
  options.argv = {g_vm, "nginx"};
  options.stdout_mode = StdioMode::kNull;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> runner = Subprocess::Start(std::move(options));
  ASSERT_TRUE(runner.ok()) << runner.status();
  // Its progress, until it says where port 80 is.
  std::string progress;
  const absl::Time deadline = absl::Now() + absl::Minutes(8);
  const std::string marker = "guest port 80/tcp is at 127.0.0.1:";
  size_t at = std::string::npos;
  while ((at = progress.find(marker)) == std::string::npos ||
         progress.find('\n', at) == std::string::npos) {
    ASSERT_LT(absl::Now(), deadline) << progress;
    pollfd pfd = {runner->stderr_pipe().get(), POLLIN, 0};
    if (poll(&pfd, 1, 1000) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(pfd.fd, buffer, sizeof(buffer));
    ASSERT_GT(n, 0) << "the runner ended:\n" << progress;
    progress.append(buffer, n);
  }
  std::cout << progress;
  uint32_t port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      progress.substr(at + marker.size(),
                      progress.find('\n', at) - at - marker.size()),
      &port));
  ASSERT_EQ(Fcvm({"ls"}).code, 0);
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok() && names->size() == 1);
  google::protobuf::Struct state = Inspect((*names)[0]);
  Remember(state);

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

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
