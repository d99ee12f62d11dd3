// `fcvm run --network pasta|slirp4netns` end to end, as an unprivileged
// user (nobody): the VM's TAP, /30 and nftables rules live in user and
// network namespaces of the VM's own, and pasta or slirp4netns links them
// to the host; the published port answers on 127.0.0.1 with the page the
// guest serves. stop leaves no process, namespace or socket behind; a
// runner killed with SIGKILL leaves them, and `fcvm gc` (as the same user)
// removes them.
//
// The test itself starts as root, to build its own world and leave it with
// the process: a network namespace (with a veth uplink and a default route,
// as a real host has, which pasta needs) and a mount namespace where
// /dev/net/tun is usable by everyone, as on a stock Debian host (this
// machine's is root-only). The kernel, base.ext4, the image and fcvm are
// copied where nobody can read them.
//   rootless_test <runner/vm> <runner/fcvm>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/http_server.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/net/nft.h"
#include "runner/net/tap.h"
#include "runner/state/process.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uid_t kNobody = 65534;
// The test's DNS server (dnsmasq) and web server listen here, on the test
// namespace's own veth: the host side, as the helpers see it.
constexpr char kServices[] = "10.251.0.1";
// The one name dnsmasq answers (with kServices).
constexpr char kName[] = "fcvm-test.internal";

// Where the copies nobody can read live: kernel, rootfs, image, fcvm.
struct Assets {
  std::string dir, fcvm, kernel, rootfs, image;
};
Assets g_assets;

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

[[nodiscard]] absl::Status Run(std::vector<std::string> argv) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  return RunCommand(std::move(options), absl::Minutes(2)).status();
}

// Copies //runner:vm's kernel, base.ext4 and busybox-httpd image (named in
// its vm_assets.txt) and fcvm itself into a directory everyone can read.
[[nodiscard]] absl::Status CopyAssets() {
  char dir[] = "/tmp/fcvm-rootless-assets.XXXXXX";
  if (mkdtemp(dir) == nullptr || chmod(dir, 0755) != 0) {
    return absl::InternalError("mkdtemp under /tmp");
  }
  g_assets.dir = dir;
  const std::string vm = HostVm();
  const std::string list_path =
      absl::StrCat(vm.substr(0, vm.rfind('/') + 1),
                   vm.substr(vm.rfind('/') + 1), "_assets.txt");
  absl::StatusOr<std::string> list = ReadFile(list_path);
  if (!list.ok()) return list.status();
  auto copy = [&](const std::string& from,
                  const std::string& name) -> absl::StatusOr<std::string> {
    const std::string to = absl::StrCat(g_assets.dir, "/", name);
    absl::Status copied =
        Run({"cp", "--sparse=always", "--dereference", from, to});
    if (!copied.ok()) return copied;
    chmod(to.c_str(), 0755);
    return to;
  };
  for (absl::string_view line :
       absl::StrSplit(*list, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "--kernel=")) {
      absl::StatusOr<std::string> to = copy(std::string(line), "kernel");
      if (!to.ok()) return to.status();
      g_assets.kernel = *to;
    } else if (absl::ConsumePrefix(&line, "--rootfs=")) {
      absl::StatusOr<std::string> to = copy(std::string(line), "base.ext4");
      if (!to.ok()) return to.status();
      g_assets.rootfs = *to;
    } else if (absl::ConsumePrefix(&line, "--oci=busybox-httpd=")) {
      absl::StatusOr<std::string> to = copy(std::string(line), "image.tar");
      if (!to.ok()) return to.status();
      g_assets.image = *to;
    }
  }
  absl::StatusOr<std::string> fcvm = copy(g_programs.fcvm, "fcvm");
  if (!fcvm.ok()) return fcvm.status();
  g_assets.fcvm = *fcvm;
  if (g_assets.kernel.empty() || g_assets.rootfs.empty() ||
      g_assets.image.empty()) {
    return absl::NotFoundError(absl::StrCat(list_path, " lacks an asset"));
  }
  return absl::OkStatus();
}

// The uid a process runs as (-1 if it is gone).
int64_t UidOf(pid_t pid) {
  absl::StatusOr<std::string> status =
      ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::ConsumePrefix(&line, "Uid:")) {
      int64_t uid = -1;
      std::vector<absl::string_view> ids =
          absl::StrSplit(line, '\t', absl::SkipEmpty());
      if (!ids.empty() && absl::SimpleAtoi(ids[0], &uid)) return uid;
    }
  }
  return -1;
}

// A TCP listener on 127.0.0.1:port.
[[nodiscard]] absl::StatusOr<UniqueFd> ListenOn(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (!fd ||
      bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
          0 ||
      listen(fd.get(), 1) != 0) {
    return absl::InternalError(absl::StrCat("listen on port ", port));
  }
  return fd;
}

// The live processes whose command line mentions `text` (the holder names
// the state directory; slirp4netns its API socket there).
std::vector<std::string> ProcessesMentioning(const std::string& text) {
  std::vector<std::string> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = readdir(proc)) {
    int64_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    absl::StatusOr<std::string> cmdline =
        ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    if (!cmdline.ok() || !absl::StrContains(*cmdline, text)) continue;
    if (!runner::SameProcessAlive(pid, runner::StartTicks(pid))) continue;
    std::replace(cmdline->begin(), cmdline->end(), '\0', ' ');
    found.push_back(*cmdline);
  }
  closedir(proc);
  return found;
}

class RootlessTest : public FcvmTest {
 protected:
  void SetUp() override {
    FcvmTest::SetUp();
    ASSERT_EQ(chown(state_.c_str(), kNobody, kNobody), 0);
    // The store is nobody's: root's fcvm refuses another user's store (it
    // could be made to signal processes it names), so ls, inspect and the
    // cleanup run as nobody too.
    fcvm_command_ = AsNobody({});
  }

  // fcvm (the copy) as nobody, with the copied assets.
  std::vector<std::string> AsNobody(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "setpriv",
        absl::StrCat("--reuid=", kNobody),
        absl::StrCat("--regid=", kNobody),
        "--clear-groups",
        "--",
        g_assets.fcvm,
        absl::StrCat("--kernel=", g_assets.kernel),
        absl::StrCat("--rootfs=", g_assets.rootfs),
        absl::StrCat("--oci=busybox-httpd=", g_assets.image)};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  Result Nobody(std::vector<std::string> args,
                absl::Duration timeout = absl::Minutes(3)) {
    return Exec(AsNobody(std::move(args)), timeout);
  }

  struct Pids {
    std::pair<pid_t, uint64_t> holder, helper, vmm;
  };
  Pids PidsOf(const google::protobuf::Struct& state) {
    const auto& net = state.fields().at("network").struct_value();
    auto pair = [&](const google::protobuf::Struct& s, const std::string& pid,
                    const std::string& ticks) {
      int64_t p = 0;
      uint64_t t = 0;
      (void)absl::SimpleAtoi(Field(s, pid), &p);
      (void)absl::SimpleAtoi(Field(s, ticks), &t);
      return std::make_pair(static_cast<pid_t>(p), t);
    };
    return {pair(net, "holder_pid", "holder_start_ticks"),
            pair(net, "helper_pid", "helper_start_ticks"),
            pair(state, "vmm_pid", "vmm_start_ticks")};
  }
  static bool Alive(const std::pair<pid_t, uint64_t>& p) {
    return runner::SameProcessAlive(p.first, p.second);
  }
  // Nothing of the VM on the test's own network namespace: the TAP and
  // table were in the VM's.
  void ExpectHostUntouched(const google::protobuf::Struct& state) {
    const google::protobuf::Struct& net =
        state.fields().at("network").struct_value();
    EXPECT_FALSE(runner::net::LinkExists(Field(net, "tap")))
        << Field(net, "tap") << " on the host";
    EXPECT_FALSE(runner::net::ListTable(Field(net, "nft_table")).ok())
        << "the VM's table is on the host";
  }
};

TEST_F(RootlessTest, PastaAsNobodyServesThePublishedPortAndStopLeavesNothing) {
  const uint16_t port = FreePort();
  Result run =
      Nobody({"run", "-d", "--network", "pasta", "--accel", "tcg", "--name",
              "web", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
             absl::Minutes(8));
  std::cout << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct state = Inspect("web");
  Remember(state);
  // The detached supervisor's progress: the namespace's uplink is the
  // test's veth, as pasta copied it.
  EXPECT_THAT(ReadFile(absl::StrCat(Field(state, "dir"), "/supervisor.log"))
                  .value_or(""),
              HasSubstr("network: pasta, pid "));
  const auto& net = state.fields().at("network").struct_value();
  EXPECT_EQ(Field(net, "mode"), "pasta");
  const Pids pids = PidsOf(state);
  ASSERT_TRUE(Alive(pids.holder));
  ASSERT_TRUE(Alive(pids.helper));
  ASSERT_TRUE(Alive(pids.vmm));
  // Rootless for real: pasta and QEMU run as nobody.
  EXPECT_EQ(UidOf(pids.helper.first), kNobody);
  EXPECT_EQ(UidOf(pids.vmm.first), kNobody);
  ExpectHostUntouched(state);

  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));

  Result stop = Nobody({"stop", "web"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_FALSE(Alive(pids.vmm));
  EXPECT_FALSE(Alive(pids.helper)) << "pasta left running";
  EXPECT_FALSE(Alive(pids.holder)) << "namespace holder left running";
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";
  const std::string dir = Field(state, "dir");
  EXPECT_NE(access(absl::StrCat(dir, "/qmp.sock").c_str(), F_OK), 0);
  ASSERT_EQ(Nobody({"rm", "web"}).code, 0);
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << dir << " left";
}

// Clones of a rootless VM, as nobody: each gets a namespace, TAP, /30 and
// pasta of its own, its agent moves the guest to the new address, and each
// answers on its own published port; rm leaves no process of any of them.
TEST_F(RootlessTest, ClonesOfAPastaVmEachGetANetworkOfTheirOwn) {
  const uint16_t port = FreePort();
  Result run =
      Nobody({"run", "-d", "--network", "pasta", "--accel", "tcg", "--name",
              "web", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"},
             absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("web"));
  Result snap = Nobody({"snapshot", "create", "web", "--tag", "tr"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  const uint16_t first = FreePort();
  Result clone = Nobody(
      {"clone", "tr", "--count", "2", "-p", absl::StrCat(first, ":8080")});
  std::cout << clone.err;
  ASSERT_EQ(clone.code, 0) << clone.err;
  std::vector<Pids> all;
  for (int i = 1; i <= 2; ++i) {
    google::protobuf::Struct state = Inspect(absl::StrCat("tr-", i));
    Remember(state);
    all.push_back(PidsOf(state));
    EXPECT_TRUE(Alive(all.back().helper)) << "tr-" << i;
    EXPECT_EQ(UidOf(all.back().vmm.first), kNobody);
    ExpectHostUntouched(state);
    absl::StatusOr<std::string> page = Get("127.0.0.1", first + i - 1);
    ASSERT_TRUE(page.ok()) << "tr-" << i << ": " << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  }
  ASSERT_TRUE(Get("127.0.0.1", port).ok()) << "the source stopped serving";
  Result rm = Nobody({"rm", "-f", "tr-1", "tr-2", "web"});
  ASSERT_EQ(rm.code, 0) << rm.err;
  for (const Pids& pids : all) {
    EXPECT_FALSE(Alive(pids.vmm));
    EXPECT_FALSE(Alive(pids.helper)) << "pasta left running";
    EXPECT_FALSE(Alive(pids.holder)) << "namespace holder left running";
  }
  ASSERT_EQ(Nobody({"snapshot", "rm", "tr"}).code, 0);
}

TEST_F(RootlessTest, Slirp4netnsRunnerKilledThenGcRemovesEverything) {
  const uint16_t port = FreePort();
  std::string progress;
  absl::StatusOr<Subprocess> runner = StartUntil(
      AsNobody({"run", "--network", "slirp4netns", "--accel", "tcg", "--name",
                "fg", "-p", absl::StrCat(port, ":8080"), "busybox-httpd"}),
      "fg", &progress);
  ASSERT_TRUE(runner.ok()) << runner.status();
  google::protobuf::Struct state = Inspect("fg");
  const Pids pids = PidsOf(state);
  EXPECT_EQ(UidOf(pids.helper.first), kNobody);
  ExpectHostUntouched(state);
  absl::StatusOr<std::string> page = Get("127.0.0.1", port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));

  // The runner alone (setpriv exec'd it: same pid): its VM, slirp4netns
  // and the namespace stay behind.
  ASSERT_EQ(kill(runner->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner->Wait(absl::Seconds(10)).ok());
  EXPECT_TRUE(Alive(pids.vmm)) << "QEMU died with its runner";
  EXPECT_TRUE(Alive(pids.helper)) << "slirp4netns died with its runner";

  Result gc = Nobody({"gc"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_THAT(gc.out, HasSubstr("slirp4netns and the VM's network namespace"));
  EXPECT_FALSE(Alive(pids.vmm));
  EXPECT_FALSE(Alive(pids.helper));
  EXPECT_FALSE(Alive(pids.holder));
  EXPECT_NE(access(Field(state, "dir").c_str(), F_OK), 0);
  EXPECT_FALSE(Get("127.0.0.1", port).ok()) << "the port still answers";
}

// A published port someone else holds: the run fails at once (125) in the
// helper's words, naming the port, and leaves no holder or helper.
TEST_F(RootlessTest, ATakenPortFailsTheRunInTheHelpersWords) {
  const uint16_t port = FreePort();
  absl::StatusOr<UniqueFd> taken = ListenOn(port);
  ASSERT_TRUE(taken.ok()) << taken.status();
  for (const std::string helper : {"pasta", "slirp4netns"}) {
    const std::string name = absl::StrCat("taken-", helper);
    Result run =
        Nobody({"run", "-d", "--network", helper, "--accel", "tcg", "--name",
                name, "-p", absl::StrCat(port, ":8080"), "busybox-httpd"});
    EXPECT_EQ(run.code, 125) << run.err;
    EXPECT_THAT(run.err, HasSubstr(name));
    // pasta names it its way (-t 127.0.0.1/PORT), fcvm for slirp4netns.
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat(
                             "127.0.0.1", helper == "pasta" ? "/" : ":", port)))
        << "the port is not named";
    EXPECT_THAT(run.err, HasSubstr(helper == "pasta" ? "Failed to bind any port"
                                                     : "slirp4netns refused"));
    EXPECT_THAT(ProcessesMentioning(state_), IsEmpty());
    EXPECT_EQ(Nobody({"rm", name}).code, 0);
  }
}

// The guest's own traffic: a name resolved through the DNS server it was
// given (slirp4netns's forwarder 10.0.2.3, or the host's resolver for
// pasta), then a page fetched by that name from a server on the host side,
// masqueraded out of the VM's namespace and carried by the helper.
TEST_F(RootlessTest, TheGuestResolvesAndFetchesThroughEitherHelper) {
  std::vector<std::string> paths;
  absl::StatusOr<std::unique_ptr<HttpTestServer>> server =
      HttpTestServer::StartTcp(
          [&](const HttpRequest& request) {
            paths.push_back(request.path);
            return HttpAnswer{200, absl::StrCat("egress ok ", request.path),
                              "text/plain"};
          },
          kServices);
  ASSERT_TRUE(server.ok()) << server.status();
  for (const std::string helper : {"pasta", "slirp4netns"}) {
    const std::string name = absl::StrCat("egress-", helper);
    const std::string script = absl::StrCat(
        "/bin/busybox nslookup ", kName, " && /bin/busybox wget -q -O- http://",
        kName, ":", (*server)->port(), "/", helper);
    Result run =
        Nobody({"run", "--network", helper, "--accel", "tcg", "--name", name,
                "busybox-httpd", "/bin/busybox", "sh", "-c", script},
               absl::Minutes(8));
    std::cout << run.err;
    EXPECT_EQ(run.code, 0) << run.err;
    Result logs = Nobody({"logs", name});
    std::cout << logs.out;
    EXPECT_THAT(logs.out, HasSubstr(kServices)) << "the name did not resolve";
    EXPECT_THAT(logs.out, HasSubstr(absl::StrCat("egress ok /", helper)));
    EXPECT_THAT(ProcessesMentioning(state_), IsEmpty());
    EXPECT_EQ(Nobody({"rm", name}).code, 0);
  }
  EXPECT_EQ(paths.size(), 2u);
}

// A veth pair with an address and a default route: what pasta copies into
// the VM's namespace (it refuses to start on a host with no route out).
// Its peer carries the test's own servers (kServices); nothing else is
// reachable.
class Uplink : public ::testing::Environment {
 public:
  void SetUp() override {
    for (std::vector<std::string> argv :
         {std::vector<std::string>{"ip", "link", "add", "up0", "type", "veth",
                                   "peer", "name", "up1"},
          {"ip", "addr", "add", "10.250.0.1/24", "dev", "up0"},
          {"ip", "link", "set", "up0", "up"},
          {"ip", "link", "set", "up1", "up"},
          {"ip", "route", "add", "default", "via", "10.250.0.254", "dev", "up0",
           "onlink"},
          // Where the test's DNS and HTTP servers are: a host address the
          // helpers reach with ordinary sockets.
          {"ip", "addr", "add", absl::StrCat(kServices, "/24"), "dev",
           "up1"}}) {
      absl::Status done = Run(argv);
      ASSERT_TRUE(done.ok()) << done;
    }
    absl::Status copied = CopyAssets();
    ASSERT_TRUE(copied.ok()) << copied;
    // The host's resolver is dnsmasq on kServices, answering for one name
    // (in this process's mount namespace only).
    const std::string resolv = absl::StrCat(g_assets.dir, "/resolv.conf");
    ASSERT_TRUE(WriteFileAtomically(
                    resolv, absl::StrCat("nameserver ", kServices, "\n"), 0644)
                    .ok());
    ASSERT_EQ(
        mount(resolv.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr), 0)
        << strerror(errno);
    SubprocessOptions dns;
    dns.argv = {"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--bind-interfaces",
                absl::StrCat("--listen-address=", kServices),
                absl::StrCat("--address=/", kName, "/", kServices),
                // Its own: AAAA gets "no such record", not REFUSED.
                absl::StrCat("--local=/", kName, "/"),
                absl::StrCat("--pid-file=", g_assets.dir, "/dnsmasq.pid"),
                "--log-queries", "--log-facility=-"};
    absl::StatusOr<Subprocess> started = Subprocess::Start(std::move(dns));
    ASSERT_TRUE(started.ok()) << started.status();
    dnsmasq_.emplace(std::move(*started));
  }
  void TearDown() override {
    dnsmasq_.reset();
    if (!g_assets.dir.empty()) {
      nftw(g_assets.dir.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
    }
  }

 private:
  std::optional<Subprocess> dnsmasq_;
};

// /dev/net/tun as a stock Debian host has it (0666), in this process's own
// mount namespace only.
bool UsableTun() {
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::cerr << "needs root for a mount namespace of its own\n";
    return false;
  }
  char dir[] = "/tmp/fcvm-rootless-tun.XXXXXX";
  if (mkdtemp(dir) == nullptr) return false;
  const std::string node = absl::StrCat(dir, "/tun");
  const bool ok =
      mknod(node.c_str(), S_IFCHR | 0666, makedev(10, 200)) == 0 &&
      chmod(node.c_str(), 0666) == 0 &&
      mount(node.c_str(), "/dev/net/tun", nullptr, MS_BIND, nullptr) == 0;
  if (!ok) std::cerr << "cannot make /dev/net/tun usable: " << strerror(errno);
  // The bind mount keeps the node alive; its directory can go.
  unlink(node.c_str());
  rmdir(dir);
  return ok;
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  if (!fcvm::testing::UsableTun()) return 1;
  ::testing::AddGlobalTestEnvironment(new fcvm::testing::Uplink);
  return fcvm::testing::FcvmTestMainInOwnNetns(argc, argv);
}
