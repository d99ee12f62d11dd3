// `fcvm exec` and `fcvm cp` end to end: a busybox-httpd VM under QEMU
// (TCG here, user-mode networking) for the host's CPU, the control channel
// over virtio-serial,
// the agent's channel server in the guest running `podman exec` and
// `podman cp` in the VM's container. Exit codes, separated and complete
// streams, stdin, concurrency, timeouts that leave nothing behind, a
// terminal driven through a real pty pair, copies both ways with modes and
// symlinks, refused escapes, a full disk, and what happens when either end
// misbehaves: garbage, a client that vanishes, the agent's channel server
// killed and restarted, a restored clone getting its own channel.
//   exec_test <vm_x86_64> <vm_aarch64> <fcvm> ...
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ExecTest : public FcvmTest {
 protected:
  // One VM for a case: busybox-httpd, detached, ready.
  void Boot(const std::string& name, std::vector<std::string> extra = {},
            std::vector<std::string> command = {}) {
    // QEMU with user-mode networking: no TAP, no table (this test runs in
    // the host's network namespace; the stand-in firecracker's vsock path
    // is checked in its own, by snapshot_standin_test).
    std::vector<std::string> argv = {HostVm(), "--backend", "qemu",
                                     "-d",     "--name",    name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("busybox-httpd");
    argv.insert(argv.end(), command.begin(), command.end());
    Result run = Exec(argv, absl::Minutes(8));
    ASSERT_EQ(run.code, 0) << run.err;
    Remember(Inspect(name));
  }
  // fcvm with `input` on its stdin.
  Result FcvmWithInput(std::vector<std::string> args, const std::string& input,
                       absl::Duration timeout = absl::Minutes(3)) {
    args.insert(args.begin(), fcvm_command_.begin(), fcvm_command_.end());
    return ExecWithInput(std::move(args), input, timeout);
  }
  // The guest's processes (busybox ps: pid, user, time, command line).
  std::string GuestPs(const std::string& name) {
    return Fcvm({"exec", "--vm", name, "--", "ps"}).out;
  }
};

std::string Sha(const std::string& data) { return Sha256Hex(data); }

TEST_F(ExecTest, CommandsRunInTheContainerWithTheirCodesStreamsAndStdin) {
  Boot("web");
  // What the README shows.
  Result os = Fcvm({"exec", "web", "--", "cat", "/etc/os-release"});
  EXPECT_EQ(os.code, 0) << os.err;
  EXPECT_THAT(os.out, HasSubstr("fcvm busybox-httpd"));

  // Exit codes, Podman's conventions.
  EXPECT_EQ(Fcvm({"exec", "web", "--", "true"}).code, 0);
  EXPECT_EQ(Fcvm({"exec", "web", "--", "sh", "-c", "exit 3"}).code, 3);
  Result missing = Fcvm({"exec", "web", "--", "/no/such/program"});
  EXPECT_EQ(missing.code, 127) << missing.err;
  Result not_executable = Fcvm({"exec", "web", "--", "/etc/os-release"});
  EXPECT_EQ(not_executable.code, 126) << not_executable.err;
  EXPECT_EQ(Fcvm({"exec", "web", "--", "sh", "-c", "kill -9 $$"}).code, 137);
  Result no_vm = Fcvm({"exec", "nosuchvm", "--", "true"});
  EXPECT_EQ(no_vm.code, 125);
  EXPECT_THAT(no_vm.err, HasSubstr("nosuchvm"));

  // In the container: its root, its env, -e, -w, -u.
  Result in = Fcvm({"exec", "-e", "GREETING=hi there", "-w", "/srv/www", "-u",
                    "1234", "web", "--", "sh", "-c",
                    "echo \"$GREETING\"; pwd; id -u; ls /srv/www"});
  EXPECT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(in.out, "hi there\n/srv/www\n1234\nindex.html\n");
  // --vm: the VM itself (its agent binary is there, not in the container).
  Result vm = Fcvm({"exec", "--vm", "web", "--", "ls", "/usr/sbin/fc-agent"});
  EXPECT_EQ(vm.code, 0) << vm.err;
  EXPECT_EQ(Fcvm({"exec", "web", "--", "ls", "/usr/sbin/fc-agent"}).code, 1);

  // 10 MiB on each stream, separated and complete.
  Result big =
      Fcvm({"exec", "web", "--", "sh", "-c",
            "dd if=/dev/zero bs=1048576 count=10 2>/dev/null | tr '\\0' o; "
            "dd if=/dev/zero bs=1048576 count=10 2>/dev/null | tr '\\0' e >&2"},
           absl::Minutes(5));
  ASSERT_EQ(big.code, 0) << big.err.substr(0, 500);
  EXPECT_EQ(big.out.size(), 10u << 20);
  EXPECT_EQ(big.err.size(), 10u << 20);
  EXPECT_EQ(big.out, std::string(10u << 20, 'o'));
  EXPECT_EQ(big.err, std::string(10u << 20, 'e'));

  // 10 MiB of stdin, echoed back byte for byte.
  std::string input(10u << 20, '\0');
  for (size_t i = 0; i < input.size(); ++i) {
    input[i] = static_cast<char>((i * 7919) >> 3);
  }
  Result echo = FcvmWithInput({"exec", "-i", "web", "--", "cat"}, input,
                              absl::Minutes(5));
  ASSERT_EQ(echo.code, 0) << echo.err;
  EXPECT_EQ(echo.out.size(), input.size());
  EXPECT_EQ(Sha(echo.out), Sha(input));
  // Without -i the command's stdin is empty.
  Result no_stdin = FcvmWithInput({"exec", "web", "--", "wc", "-c"}, "abc");
  EXPECT_EQ(no_stdin.out, "0\n");

  // 20 at once, each its own output.
  std::vector<Result> results(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          Fcvm({"exec", "web", "--", "sh", "-c",
                absl::StrCat("sleep 1; seq 1 ", 1000 * (i + 1), " | tail -1")},
               absl::Minutes(5));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(results[i].code, 0) << i << ": " << results[i].err;
    EXPECT_EQ(results[i].out, absl::StrCat(1000 * (i + 1), "\n")) << i;
  }
}

TEST_F(ExecTest, TimeoutsAndDetachedSessionsLeaveNoProcessBehind) {
  Boot("web");
  const absl::Time start = absl::Now();
  Result slow = Fcvm({"exec", "--timeout", "3s", "web", "--", "sh", "-c",
                      "sleep 1001 & sleep 1002; echo never"});
  EXPECT_EQ(slow.code, 124) << slow.err;
  EXPECT_THAT(slow.err, HasSubstr("timed out after 3s"));
  EXPECT_THAT(slow.out, Not(HasSubstr("never")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  const std::string ps = GuestPs("web");
  EXPECT_THAT(ps, Not(HasSubstr("sleep 1001")));
  EXPECT_THAT(ps, Not(HasSubstr("sleep 1002")));

  // -d: an id at once; the command runs on.
  Result detached =
      Fcvm({"exec", "-d", "web", "--", "sh", "-c", "sleep 2; touch /tmp/done"});
  ASSERT_EQ(detached.code, 0) << detached.err;
  EXPECT_FALSE(absl::StripAsciiWhitespace(detached.out).empty());
  bool done = false;
  for (int i = 0; i < 60 && !done; ++i) {
    done = Fcvm({"exec", "web", "--", "test", "-e", "/tmp/done"}).code == 0;
    if (!done) absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_TRUE(done);
  // A detached command that cannot start says so, with `podman exec -d`'s
  // code (125 for this, as Podman 4.3 gives it) and words.
  Result cannot = Fcvm({"exec", "-d", "web", "--", "/no/such/program"});
  EXPECT_EQ(cannot.code, 125) << cannot.err;
  EXPECT_THAT(cannot.err, HasSubstr("/no/such/program"));
  EXPECT_EQ(cannot.out, "");
  // A detached command's --timeout outlives the exec that started it.
  ASSERT_EQ(Fcvm({"exec", "-d", "--timeout", "2s", "web", "--", "sleep",
                  "1003"})
                .code,
            0);
  EXPECT_THAT(GuestPs("web"), HasSubstr("sleep 1003"));
  bool killed = false;
  for (int i = 0; i < 40 && !killed; ++i) {
    killed = !absl::StrContains(GuestPs("web"), "sleep 1003");
    if (!killed) absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_TRUE(killed);
}

// A terminal: the test is the user's terminal (a pty pair), fcvm runs on
// its slave side.
TEST_F(ExecTest, AnInteractiveShellGetsATerminalItsSizeAndCtrlC) {
  Boot("web");
  int master = -1;
  winsize size = {};
  size.ws_row = 33;
  size.ws_col = 111;
  const pid_t child = forkpty(&master, nullptr, nullptr, &size);
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<char*> argv;
    std::vector<std::string> args = fcvm_command_;
    args.insert(args.end(), {"exec", "-it", "web", "sh"});
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::string screen;
  auto read_until = [&](const std::string& marker, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(screen, marker) && absl::Now() < deadline) {
      pollfd pfd = {master, POLLIN, 0};
      if (poll(&pfd, 1, 200) == 1) {
        char buffer[4096];
        const ssize_t n = read(master, buffer, sizeof(buffer));
        if (n <= 0) break;
        screen.append(buffer, n);
      }
    }
    return absl::StrContains(screen, marker);
  };
  auto type = [&](const std::string& keys) {
    ASSERT_EQ(write(master, keys.data(), keys.size()),
              static_cast<ssize_t>(keys.size()));
  };
  ASSERT_TRUE(read_until("# ", absl::Seconds(60))) << screen;  // The prompt.
  type("stty size\r");
  EXPECT_TRUE(read_until("33 111", absl::Seconds(30))) << screen;
  // A resize reaches the guest's terminal.
  size.ws_row = 44;
  size.ws_col = 122;
  ASSERT_EQ(ioctl(master, TIOCSWINSZ, &size), 0);
  absl::SleepFor(absl::Milliseconds(500));
  type("stty size\r");
  EXPECT_TRUE(read_until("44 122", absl::Seconds(30))) << screen;
  // Ctrl-C ends the foreground command, not the shell.
  type("sleep 1000\r");
  absl::SleepFor(absl::Seconds(2));
  type("\x03");
  type("echo after-$((40+2))\r");
  EXPECT_TRUE(read_until("after-42\r\n/ # ", absl::Seconds(30))) << screen;
  // Ctrl-D at the prompt ends the shell (as a user presses it: once the
  // prompt is there; a ^D typed while the shell still runs a command is
  // the terminal's end-of-file for that command, which ash never reads);
  // fcvm exits with its status and gives the terminal back as it was.
  absl::SleepFor(absl::Milliseconds(500));
  type("\x04");
  int status = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  pid_t got = 0;
  while ((got = waitpid(child, &status, WNOHANG)) == 0 &&
         absl::Now() < deadline) {
    read_until("\x01never", absl::Milliseconds(200));
  }
  ASSERT_EQ(got, child) << screen;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << screen;
  termios mode;
  ASSERT_EQ(tcgetattr(master, &mode), 0);
  close(master);
  EXPECT_EQ(GuestPs("web").find("sleep 1000"), std::string::npos);
}

TEST_F(ExecTest, CopiesTreesBothWaysAndRefusesEscapesAndAFullDisk) {
  namespace fs = std::filesystem;
  // A small writable volume: a 16 MiB ext4 image.
  const std::string volume = absl::StrCat(state_, "/small.ext4");
  SubprocessOptions mkfs;
  mkfs.argv = {"mke2fs", "-q", "-F", "-t", "ext4", volume, "16M"};
  ASSERT_TRUE(RunCommand(mkfs, absl::Minutes(1)).ok());
  Boot("web", {"-v", absl::StrCat(volume, ":/data")});
  const std::string tree = absl::StrCat(state_, "/tree");
  fs::create_directories(tree + "/sub/deeper");
  ASSERT_TRUE(
      WriteFileAtomically(tree + "/run.sh", "#!/bin/sh\necho hi\n", 0755).ok());
  ASSERT_TRUE(WriteFileAtomically(tree + "/secret", "s3cret\n", 0600).ok());
  ASSERT_TRUE(
      WriteFileAtomically(tree + "/sub/deeper/note", "deep\n", 0644).ok());
  chmod((tree + "/sub").c_str(), 0750);
  fs::create_symlink("sub/deeper/note", tree + "/link");
  // 256 MiB, not all zeros (a sparse trick would not count).
  {
    std::ofstream big(tree + "/big", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int m = 0; m < 256; ++m) {
      for (size_t i = 0; i < block.size(); i += 4096) block[i] = char(m + i);
      big.write(block.data(), block.size());
    }
  }
  absl::StatusOr<std::string> big_sha = Sha256File(tree + "/big");
  ASSERT_TRUE(big_sha.ok());

  // Host -> VM.
  Result in = Fcvm({"cp", tree, "web:/tmp/tree"}, absl::Minutes(10));
  ASSERT_EQ(in.code, 0) << in.err;
  Result listing = Fcvm(
      {"exec", "web", "--", "sh", "-c",
       "cd /tmp/tree && stat -c '%n %a' run.sh secret sub && readlink link && "
       "cat link && sha256sum big"});
  EXPECT_EQ(listing.code, 0) << listing.err;
  EXPECT_EQ(listing.out,
            absl::StrCat("run.sh 755\nsecret 600\nsub 750\nsub/deeper/note\n"
                         "deep\n",
                         *big_sha, "  big\n"));
  EXPECT_EQ(Fcvm({"exec", "web", "--", "/tmp/tree/run.sh"}).out, "hi\n");

  // VM -> host: what went in comes back the same.
  const std::string back = absl::StrCat(state_, "/back");
  Result out = Fcvm({"cp", "web:/tmp/tree", back}, absl::Minutes(10));
  ASSERT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(fs::status(back + "/run.sh").permissions() & fs::perms::mask,
            fs::perms(0755));
  EXPECT_EQ(fs::status(back + "/secret").permissions() & fs::perms::mask,
            fs::perms(0600));
  EXPECT_EQ(fs::status(back + "/sub").permissions() & fs::perms::mask,
            fs::perms(0750));
  EXPECT_EQ(fs::read_symlink(back + "/link"), "sub/deeper/note");
  EXPECT_EQ(Sha256File(back + "/big").value_or(""), *big_sha);
  // A single file into an existing directory, Podman's way.
  const std::string here = absl::StrCat(state_, "/here");
  fs::create_directories(here);
  const std::string os_release =
      Fcvm({"exec", "web", "--", "cat", "/etc/os-release"}).out;
  ASSERT_THAT(os_release, HasSubstr("fcvm busybox-httpd"));
  Result single = Fcvm({"cp", "web:/etc/os-release", here});
  EXPECT_EQ(single.code, 0) << single.err;
  EXPECT_EQ(ReadFile(here + "/os-release").value_or(""), os_release);

  // A path that climbs out of the container's root stays in it (Podman
  // resolves it there); the host refuses archive entries that would leave
  // the destination (runner/exec copy_test, crafted archives).
  Result escape = Fcvm({"cp", "web:/tmp/../../../etc/os-release", here + "/x"});
  EXPECT_EQ(escape.code, 0) << escape.err;  // Resolved inside the container.
  EXPECT_EQ(ReadFile(here + "/x").value_or(""), os_release);
  // A full disk in the guest (the 16 MiB volume an empty directory
  // gets): a clear error naming the cause, not a hang.
  Result full = Fcvm({"cp", tree + "/big", "web:/data/big"}, absl::Minutes(5));
  EXPECT_EQ(full.code, 1);
  EXPECT_THAT(full.err, HasSubstr("no space left on device"));
  EXPECT_EQ(Fcvm({"exec", "web", "--", "true"}).code, 0);
}

TEST_F(ExecTest, GarbageVanishingClientsAndARestartedAgentLeaveTheVmServing) {
  // A container that logs as fast as its console takes it, and serves.
  Boot("web", {},
       {"/bin/sh", "-c",
        "yes 'a log line the console carries' & exec /bin/busybox httpd -f "
        "-p 8080 -h /srv/www"});
  const google::protobuf::Struct web = Inspect("web");
  const std::string dir = Field(web, "dir");
  // Garbage on the hub's socket: it says so and hangs up; the VM serves.
  {
    absl::StatusOr<UniqueFd> fd =
        ConnectUnixStream(dir + "/channel.sock", "the hub");
    ASSERT_TRUE(fd.ok()) << fd.status();
    const std::string junk = "GET / HTTP/1.1\r\n\r\n";
    ASSERT_EQ(write(fd->get(), junk.data(), junk.size()),
              static_cast<ssize_t>(junk.size()));
    std::string answer;
    char buffer[512];
    ssize_t n;
    while ((n = read(fd->get(), buffer, sizeof(buffer))) > 0) {
      answer.append(buffer, n);
    }
    EXPECT_THAT(answer, HasSubstr("bad frame"));
  }
  // While the container logs: exec answers, and completely.
  Result during =
      Fcvm({"exec", "web", "--", "sh", "-c", "seq 1 100000 | sha256sum"});
  EXPECT_EQ(during.code, 0) << during.err;
  EXPECT_EQ(during.out.substr(0, 64), Sha256Hex([] {
              std::string all;
              for (int i = 1; i <= 100000; ++i) absl::StrAppend(&all, i, "\n");
              return all;
            }()));
  EXPECT_THAT(ReadFile(dir + "/container.log").value_or(""),
              HasSubstr("a log line the console carries"));

  // A client killed mid-stream: its session ends in the guest too.
  {
    SubprocessOptions options;
    options.argv = fcvm_command_;
    options.argv.insert(options.argv.end(),
                        {"exec", "web", "--", "sh", "-c",
                         "while :; do echo vanishing-client; done"});
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kNull;
    absl::StatusOr<Subprocess> client = Subprocess::Start(std::move(options));
    ASSERT_TRUE(client.ok());
    char buffer[4096];
    ASSERT_GT(read(client->stdout_pipe().get(), buffer, sizeof(buffer)), 0);
    ASSERT_TRUE(client->Kill().ok());
  }
  bool gone = false;
  for (int i = 0; i < 40 && !gone; ++i) {
    gone = !absl::StrContains(GuestPs("web"), "vanishing-client");
    if (!gone) absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_TRUE(gone) << GuestPs("web");

  // The agent's channel server killed: a running session says it was lost,
  // the agent starts the server again, exec works again, the VM serves.
  SubprocessOptions options;
  options.argv = fcvm_command_;
  options.argv.insert(options.argv.end(),
                      {"exec", "web", "--", "sleep", "600"});
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> waiting = Subprocess::Start(std::move(options));
  ASSERT_TRUE(waiting.ok());
  absl::SleepFor(absl::Seconds(3));
  (void)Fcvm({"exec", "-d", "--vm", "web", "--", "sh", "-c",
              "sleep 1; kill -9 $(pidof fc-agent | tr ' ' '\\n' | while read "
              "p; do grep -q channel /proc/$p/cmdline && echo $p; done)"});
  absl::StatusOr<Subprocess::Output> lost =
      waiting->Communicate("", absl::Minutes(2));
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->exit.code, 125);
  EXPECT_THAT(lost->stderr_data, HasSubstr("lost"));
  Result again;
  for (int i = 0; i < 30; ++i) {
    again = Fcvm({"exec", "web", "--", "echo", "back"});
    if (again.code == 0) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(again.out, "back\n") << again.err;
  EXPECT_THAT(ReadFile(dir + "/console.log").value_or(""),
              HasSubstr("restarting it in 1 s"));
  const uint16_t port = static_cast<uint16_t>(web.fields()
                                                  .at("ports")
                                                  .list_value()
                                                  .values(0)
                                                  .struct_value()
                                                  .fields()
                                                  .at("host_port")
                                                  .number_value());
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  EXPECT_TRUE(page.ok()) << page.status();
}

TEST_F(ExecTest, ARestoredCloneGetsAChannelOfItsOwn) {
  Boot("web");
  ASSERT_EQ(
      Fcvm({"exec", "web", "--", "sh", "-c", "echo original > /tmp/who"}).code,
      0);
  Result snapshot =
      Fcvm({"snapshot", "create", "web", "--tag", "t1"}, absl::Minutes(5));
  ASSERT_EQ(snapshot.code, 0) << snapshot.err;
  Result clone = Fcvm({"clone", "t1", "--name", "c", "-d"}, absl::Minutes(5));
  ASSERT_EQ(clone.code, 0) << clone.err;
  const std::string name(absl::StripAsciiWhitespace(clone.out));
  ASSERT_EQ(name, "c-1");
  Remember(Inspect(name));
  Result who;
  for (int i = 0; i < 60; ++i) {
    who = Fcvm({"exec", name, "--", "sh", "-c", "cat /tmp/who; hostname"});
    if (who.code == 0) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(who.code, 0) << who.err;
  EXPECT_THAT(who.out, HasSubstr("original\n"));
  EXPECT_THAT(who.out, HasSubstr(name));
  // The clone's writes are its own.
  ASSERT_EQ(
      Fcvm({"exec", name, "--", "sh", "-c", "echo clone > /tmp/who"}).code, 0);
  EXPECT_EQ(Fcvm({"exec", "web", "--", "cat", "/tmp/who"}).out, "original\n");
  Result ls = Fcvm({"ls"});
  EXPECT_THAT(ls.out, HasSubstr("virtio-serial"));
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
