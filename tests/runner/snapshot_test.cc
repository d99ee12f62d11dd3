// Snapshots and clones end to end under QEMU (TCG here), x86_64 and
// aarch64 guests, user-mode networking: a busybox-httpd VM snapshotted
// while it serves keeps serving; three clones each answer on their own
// port with their own hostname, machine-id and a new identity generation
// reported by their agents, each written to its own disk and none to the
// snapshot's; snapshot rm is refused while they run; stop and rm leave no
// process, socket or disk. A damaged or mismatched
// snapshot is refused with the field or file named, leaving no VM behind.
//   snapshot_test --targets=qemu <vm_x86_64> <vm_aarch64> <fcvm> ...
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runner/state/process.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using SnapshotTest = FcvmTest;

const google::protobuf::Struct& Sub(const google::protobuf::Struct& s,
                                    const std::string& key) {
  static const google::protobuf::Struct empty;
  auto it = s.fields().find(key);
  return it == s.fields().end() ? empty : it->second.struct_value();
}

// The sha256 of the snapshot's own files: a snapshot never changes after
// it is taken, whatever its source and its clones do.
std::string Fingerprint(const std::string& dir) {
  std::string all;
  for (const char* file : {"vmstate", "memory", "disk"}) {
    absl::StatusOr<std::string> sha = Sha256File(absl::StrCat(dir, "/", file));
    absl::StrAppend(&all, file, "=", sha.ok() ? *sha : sha.status().ToString(),
                    " ");
  }
  return all;
}

uint16_t HostPort(const google::protobuf::Struct& state) {
  auto it = state.fields().find("ports");
  if (it == state.fields().end() || it->second.list_value().values_size() == 0)
    return 0;
  const auto& port = it->second.list_value().values(0).struct_value();
  return static_cast<uint16_t>(port.fields().at("host_port").number_value());
}

TEST_P(SnapshotTest, ASnapshotOfAServingVmGivesClonesThatAreEachTheirOwn) {
  Result run =
      Exec(Run({"-d", "--name", "web", "busybox-httpd"}), absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  google::protobuf::Struct web = Inspect("web");
  Remember(web);
  const uint16_t web_port = HostPort(web);
  ASSERT_NE(web_port, 0);
  // The control channel (virtio-serial under QEMU; Firecracker's vsock
  // socket under the stand-in): a file the clones will find.
  const std::string transport =
      GetParam().backend == "qemu" ? "virtio-serial" : "vsock";
  EXPECT_THAT(Fcvm({"ls"}).out, HasSubstr(transport));
  Result wrote = Fcvm({"exec", "web", "--", "sh", "-c",
                       "echo written-before > /tmp/mark"});
  EXPECT_EQ(wrote.code, 0) << wrote.err;

  Result snap = Fcvm({"snapshot", "create", "web", "--tag", "t1"});
  std::cout << snap.err;
  ASSERT_EQ(snap.code, 0) << snap.err;
  EXPECT_EQ(snap.out, "t1\n");
  // The original keeps serving.
  absl::StatusOr<std::string> page = Get("127.0.0.1", web_port);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
  EXPECT_EQ(Field(Inspect("web"), "phase"), "RUNNING");
  EXPECT_THAT(Fcvm({"snapshot", "ls"}).out, HasSubstr("t1 "));
  EXPECT_THAT(Fcvm({"snapshot", "inspect", "t1"}).out,
              HasSubstr(GetParam().backend == "qemu"
                            ? "\"vmm_version\": \"QEMU emulator version"
                            : "\"vmm_version\": \"Firecracker v"));
  const std::string snapshot_dir = absl::StrCat(state_, "/snapshots/t1");
  const std::string taken = Fingerprint(snapshot_dir);

  const absl::Time start = absl::Now();
  Result clone = Fcvm({"clone", "t1", "--count", "3", "-d"});
  std::cout << "clone --count 3: " << absl::FormatDuration(absl::Now() - start)
            << "\n"
            << clone.err;
  ASSERT_EQ(clone.code, 0) << clone.err;
  EXPECT_EQ(clone.out, "t1-1\nt1-2\nt1-3\n");
  std::set<std::string> hostnames, machine_ids;
  std::set<uint16_t> ports = {web_port};
  for (const char* name : {"t1-1", "t1-2", "t1-3"}) {
    google::protobuf::Struct state = Inspect(name);
    Remember(state);
    EXPECT_EQ(Field(state, "phase"), "RUNNING") << name;
    // Its agent applied the clone's identity: generation 2, reported.
    EXPECT_EQ(Field(state, "generation"), "2") << name;
    EXPECT_EQ(Field(Sub(state, "restored_from"), "snapshot"), "t1");
    const google::protobuf::Struct& plan = Sub(Sub(state, "spec"), "plan");
    hostnames.insert(Field(plan, "hostname"));
    machine_ids.insert(Field(plan, "machine_id"));
    const uint16_t port = HostPort(state);
    EXPECT_TRUE(ports.insert(port).second) << name << " port " << port;
    page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << name << ": " << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
    const std::string console = Fcvm({"logs", "--console", name}).out;
    EXPECT_THAT(console, HasSubstr("\"kind\":\"REIDENTIFIED\""));
    EXPECT_THAT(console, HasSubstr(absl::StrCat("hostname ", name)));
    // Its own channel, to its own guest: the file the original wrote
    // before the snapshot, and its own name.
    Result in_clone = Fcvm(
        {"exec", name, "--", "sh", "-c", "cat /tmp/mark; hostname"});
    EXPECT_EQ(in_clone.code, 0) << name << ": " << in_clone.err;
    EXPECT_EQ(in_clone.out, absl::StrCat("written-before\n", name, "\n"))
        << name;
  }
  EXPECT_EQ(hostnames.size(), 3u);
  EXPECT_EQ(machine_ids.size(), 3u);
  // The source kept running and serving, the clones ran, wrote their RAM
  // (privately) and their disks (copies): the snapshot is as it was.
  ASSERT_TRUE(Get("127.0.0.1", web_port).ok());
  EXPECT_EQ(Fingerprint(snapshot_dir), taken);

  // A clone's memory is its snapshot's: it cannot be snapshotted itself.
  Result of_clone = Fcvm({"snapshot", "create", "t1-1", "--tag", "t1b"});
  EXPECT_EQ(of_clone.code, 1);
  EXPECT_THAT(of_clone.err, HasSubstr("a clone cannot be snapshotted yet"));
  Result in_use = Fcvm({"snapshot", "rm", "t1"});
  EXPECT_EQ(in_use.code, 1);
  EXPECT_THAT(in_use.err, HasSubstr("in use by t1-1, t1-2, t1-3"));

  // What each guest wrote stays its own: each clone's agent wrote its own
  // machine-id into its overlay (its writable disk); after a graceful stop
  // (the guest syncs) each disk holds that clone's, read back with debugfs
  // (real ext4), and none reached the snapshot's disk. (That disk may not
  // hold the source's yet either: what the guest had not written back when
  // it was paused is in the snapshot's memory, and each clone writes it to
  // its own disk.)
  ASSERT_EQ(Fcvm({"stop", "t1-1", "t1-2", "t1-3"}, absl::Minutes(3)).code, 0);
  auto machine_id_on = [](const std::string& disk) {
    SubprocessOptions cat;
    cat.argv = {"debugfs", "-R", "cat /root/upper/etc/machine-id", disk};
    absl::StatusOr<Subprocess::Output> out = RunCommand(cat, absl::Minutes(1));
    return out.ok() ? std::string(absl::StripAsciiWhitespace(out->stdout_data))
                    : out.status().ToString();
  };
  std::set<std::string> on_disks;
  for (const char* name : {"t1-1", "t1-2", "t1-3"}) {
    const google::protobuf::Struct state = Inspect(name);
    const std::string written = machine_id_on(Field(state, "disk"));
    EXPECT_EQ(written, Field(Sub(Sub(state, "spec"), "plan"), "machine_id"))
        << name << "'s disk";
    on_disks.insert(written);
  }
  EXPECT_EQ(on_disks.size(), 3u);
  EXPECT_EQ(on_disks.count(machine_id_on(snapshot_dir + "/disk")), 0u);
  EXPECT_EQ(Fingerprint(snapshot_dir), taken);

  Result rm =
      Fcvm({"rm", "-f", "t1-1", "t1-2", "t1-3", "web"}, absl::Minutes(3));
  ASSERT_EQ(rm.code, 0) << rm.err;
  ASSERT_EQ(Fcvm({"snapshot", "rm", "t1"}).code, 0);
  for (const auto& [pid, ticks] : vmms_) {
    EXPECT_FALSE(runner::SameProcessAlive(pid, ticks)) << "VMM " << pid;
  }
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, IsEmpty());
  EXPECT_THAT(Fcvm({"snapshot", "ls", "--json"}).out, HasSubstr("[]"));
}

TEST_P(SnapshotTest, ADamagedOrMismatchedSnapshotIsRefusedAndLeavesNothing) {
  Result run =
      Exec(Run({"-d", "--name", "src", "busybox-httpd"}), absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("src"));
  Result snap = Fcvm({"snapshot", "create", "src", "--tag", "t2", "--stop"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  const std::string dir = absl::StrCat(state_, "/snapshots/t2");
  const std::string manifest_path = dir + "/manifest.json";
  absl::StatusOr<std::string> manifest = ReadFile(manifest_path);
  ASSERT_TRUE(manifest.ok()) << manifest.status();

  // Refused on the host: 1; QEMU refusing the state: 125, as a VM that
  // failed before its container ran.
  auto refused = [&](const std::string& what, const std::string& tag,
                     const std::string& message, int code = 1) {
    Result clone = Fcvm({"clone", tag, "-d"});
    EXPECT_EQ(clone.code, code) << what << ": " << clone.err;
    EXPECT_THAT(clone.err, HasSubstr(message)) << what;
    absl::StatusOr<std::vector<std::string>> names = Names();
    ASSERT_TRUE(names.ok());
    EXPECT_THAT(*names, ElementsAre("src")) << what << ": a clone was left";
  };
  refused("missing", "nope", "no snapshot 'nope'");
  refused("a VM's name", "src", "'src' is a VM, not a snapshot");

  // Each manifest field kind: the VMM, the machine, an input, a size.
  using Edit = std::vector<std::pair<std::string, std::string>>;
  const std::vector<Edit> edits = {
      {{"\"vmm_version\": \"QEMU", "\"vmm_version\": \"QEMU 0.1 "}},
      {{"\"machine\": \"", "\"machine\": \"pc"}},
      {{"\"memory_mib\": 512", "\"memory_mib\": 256"}},
      // The kernel rebuilt: another mtime, other bytes.
      {{"\"mtime_ns\": \"", "\"mtime_ns\": \"-"},
       {"\"sha256\": \"", "\"sha256\": \"00"}},
  };
  const std::vector<std::string> said = {
      "vmm_version: expected 'QEMU 0.1 ", "machine: expected 'pc", "memory_mib",
      "sha256 (rebuilt since the snapshot?)"};
  for (size_t i = 0; i < edits.size(); ++i) {
    std::string edited = *manifest;
    for (const auto& [from, to] : edits[i]) {
      const size_t at = edited.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      edited.replace(at, from.size(), to);
    }
    ASSERT_TRUE(WriteFileAtomically(manifest_path, edited, 0600).ok());
    refused(said[i], "t2", said[i]);
  }
  ASSERT_TRUE(WriteFileAtomically(manifest_path, *manifest, 0600).ok());

  // A truncated state or memory file: named before anything starts.
  for (const char* file : {"vmstate", "memory"}) {
    const std::string path = absl::StrCat(dir, "/", file);
    const std::string aside = path + ".aside";
    ASSERT_EQ(link(path.c_str(), aside.c_str()), 0);
    ASSERT_EQ(unlink(path.c_str()), 0);
    ASSERT_TRUE(WriteFileAtomically(path, "short", 0600).ok());
    refused(file, "t2", absl::StrCat("its ", file, " file is 5 bytes"));
    ASSERT_EQ(rename(aside.c_str(), path.c_str()), 0);
  }
  // A corrupt state of the right size: QEMU refuses it, in its words.
  const std::string state_file = dir + "/vmstate";
  absl::StatusOr<std::string> good = ReadFile(state_file);
  ASSERT_TRUE(good.ok());
  std::string bad = *good;
  for (size_t i = 16; i < bad.size(); ++i) bad[i] = '\xa5';
  ASSERT_TRUE(WriteFileAtomically(state_file, bad, 0600).ok());
  refused("corrupt state", "t2", "loading the device state", 125);
  refused("corrupt state", "t2", "load of migration failed", 125);
  ASSERT_TRUE(WriteFileAtomically(state_file, *good, 0600).ok());

  // Intact again: it clones.
  Result clone = Fcvm({"clone", "t2", "-d"});
  ASSERT_EQ(clone.code, 0) << clone.err;
  google::protobuf::Struct state = Inspect("t2-1");
  Remember(state);
  absl::StatusOr<std::string> page = Get("127.0.0.1", HostPort(state));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(Fcvm({"rm", "-f", "t2-1", "src"}, absl::Minutes(3)).code, 0);
  // A snapshot whose manifest is damaged is still removed.
  ASSERT_TRUE(WriteFileAtomically(manifest_path, "{\"tag\": ", 0600).ok());
  EXPECT_THAT(Fcvm({"snapshot", "ls"}).out, HasSubstr("t2 "));
  Result rm = Fcvm({"snapshot", "rm", "t2"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << dir << " left";
}

// Owners killed with SIGKILL while clones restore, and after: `gc` leaves
// no VM, process or directory, and the snapshot is intact and clones
// again. Meanwhile `ls --json` polled throughout always parses.
TEST_P(SnapshotTest, KilledClonesAreCollectedAndTheSnapshotStaysCloneable) {
  Result run =
      Exec(Run({"-d", "--name", "src", "busybox-httpd"}), absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("src"));
  ASSERT_EQ(Fcvm({"snapshot", "create", "src", "--tag", "t3"}).code, 0);
  const std::string snapshot_dir = absl::StrCat(state_, "/snapshots/t3");
  const std::string taken = Fingerprint(snapshot_dir);

  // `fcvm ARGS` in the background.
  auto start = [&](std::vector<std::string> args) {
    SubprocessOptions options;
    options.argv = fcvm_command_;
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    return Subprocess::Start(std::move(options));
  };
  // Ten clones at once, `ls --json` polled while they come up.
  absl::StatusOr<Subprocess> fleet =
      start({"clone", "t3", "--count", "10", "-d"});
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  int polls = 0;
  while (!fleet->Wait(absl::ZeroDuration()).ok()) {
    Result ls = Fcvm({"ls", "--json"});
    ASSERT_EQ(ls.code, 0) << ls.err;
    google::protobuf::ListValue all;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ls.out, &all).ok())
        << ls.out;
    ++polls;
  }
  std::cout << polls << " polls of ls --json while 10 clones started\n";
  absl::StatusOr<Subprocess::Output> out = fleet->Communicate("");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->exit.code, 0) << out->stderr_data;
  // Fleet memory, from inspect (the VMMs' smaps_rollup): clean guest
  // pages are shared through the snapshot's memory file, so the fleet's
  // summed PSS is well under ten times one VM (bound: 0.4x ten times the
  // source's RSS, its RAM all its own).
  double fleet_pss = 0;
  for (int i = 1; i <= 10; ++i) {
    google::protobuf::Struct state = Inspect(absl::StrCat("t3-", i));
    Remember(state);
    EXPECT_EQ(Field(state, "phase"), "RUNNING") << i;
    fleet_pss += Sub(state, "memory_kib").fields().at("pss").number_value();
  }
  const double source_rss =
      Sub(Inspect("src"), "memory_kib").fields().at("rss").number_value();
  std::cout << "10 clones: summed PSS " << fleet_pss / 1024
            << " MiB; the source's RSS " << source_rss / 1024 << " MiB\n";
  EXPECT_LT(fleet_pss, 0.4 * 10 * source_rss);
  Result top = Fcvm({"top", "--once", "--interval", "0.5"});
  ASSERT_EQ(top.code, 0) << top.err;
  EXPECT_THAT(top.out, HasSubstr("t3-10 "));
  EXPECT_THAT(top.out, HasSubstr("PSS"));
  // Every owner killed, restores done: their VMMs outlive them, gc ends
  // them.
  for (int i = 1; i <= 10; ++i) {
    const google::protobuf::Struct state = Inspect(absl::StrCat("t3-", i));
    int64_t supervisor = 0;
    ASSERT_TRUE(absl::SimpleAtoi(Field(state, "supervisor_pid"), &supervisor));
    ASSERT_EQ(kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  }
  // And a clone whose owner is killed in the middle of its restore.
  absl::StatusOr<Subprocess> mid =
      start({"clone", "t3", "--name", "mid", "-d"});
  ASSERT_TRUE(mid.ok()) << mid.status();
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  google::protobuf::Struct state;
  while (Field(state, "vmm_pid").empty() || Field(state, "vmm_pid") == "0") {
    ASSERT_LT(absl::Now(), deadline) << "no VMM recorded for mid-1";
    absl::SleepFor(absl::Milliseconds(5));
    state = Inspect("mid-1");
  }
  Remember(state);
  int64_t supervisor = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(state, "supervisor_pid"), &supervisor));
  ASSERT_EQ(kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  (void)mid->Kill();

  Result gc = Fcvm({"gc"}, absl::Minutes(3));
  EXPECT_EQ(gc.code, 0) << gc.err;
  for (const auto& [pid, ticks] : vmms_) {
    if (pid == 0) continue;
    const bool source = pid == std::stoll(Field(Inspect("src"), "vmm_pid"));
    if (!source) {
      EXPECT_FALSE(runner::SameProcessAlive(pid, ticks)) << "VMM " << pid;
    }
  }
  ASSERT_EQ(Fcvm({"rm", "-f", "src"}, absl::Minutes(3)).code, 0);
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, IsEmpty());
  // Intact, and it clones.
  EXPECT_EQ(Fingerprint(snapshot_dir), taken);
  Result again = Fcvm({"clone", "t3", "-d"});
  ASSERT_EQ(again.code, 0) << again.err;
  state = Inspect("t3-1");
  Remember(state);
  ASSERT_TRUE(Get("127.0.0.1", HostPort(state)).ok());
  ASSERT_EQ(Fcvm({"rm", "-f", "t3-1"}, absl::Minutes(3)).code, 0);
  ASSERT_EQ(Fcvm({"snapshot", "rm", "t3"}).code, 0);
}

INSTANTIATE_TEST_SUITE_P(Targets, SnapshotTest, ::testing::ValuesIn(Targets()),
                         TargetName);

// Firecracker's clones with --mem-backend uffd, through the stand-in
// firecracker, which does Firecracker's restore handshake with the real
// memory server and checks every page it is served against the
// snapshot's memory file (its load fails otherwise). One server for all
// the clones of a snapshot, started by the first; SIGKILLed, gc clears
// what it left and the next clone starts another; it leaves by itself
// with the last clone.
using UffdCloneTest = FcvmTest;

// The memory server's pid, from its ready file (0: none ready).
pid_t ServerPid(const std::string& state, const std::string& tag) {
  absl::StatusOr<std::string> ready =
      ReadFile(absl::StrCat(state, "/memory-servers/", tag, "/ready"));
  int64_t pid = 0;
  if (!ready.ok() ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*ready), &pid)) {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

bool Alive(pid_t pid) {
  // A zombie is not alive: the server is setsid's orphan, reaped by init.
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  const size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() &&
         (*stat)[paren + 2] != 'Z';
}

TEST_P(UffdCloneTest, ClonesShareOneMemoryServerThatLeavesWithTheLast) {
  Result run =
      Exec(Run({"-d", "--name", "src", "busybox-httpd"}), absl::Minutes(8));
  ASSERT_EQ(run.code, 0) << run.err;
  Remember(Inspect("src"));
  Result snap = Fcvm({"snapshot", "create", "src", "--tag", "u1", "--stop"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  const std::string snapshot_dir = absl::StrCat(state_, "/snapshots/u1");
  const std::string taken = Fingerprint(snapshot_dir);
  const std::string server_dir = absl::StrCat(state_, "/memory-servers/u1");

  Result clone =
      Fcvm({"clone", "u1", "--count", "2", "-d", "--mem-backend", "uffd"});
  std::cout << clone.err;
  ASSERT_EQ(clone.code, 0) << clone.err;
  EXPECT_THAT(clone.err, HasSubstr("memory server of 'u1' started on"));
  const pid_t server = ServerPid(state_, "u1");
  ASSERT_GT(server, 0);
  EXPECT_TRUE(Alive(server));
  for (const char* name : {"u1-1", "u1-2"}) {
    google::protobuf::Struct state = Inspect(name);
    Remember(state);
    EXPECT_EQ(Field(state, "phase"), "RUNNING") << name;
    EXPECT_EQ(Field(state, "generation"), "2") << name;
    EXPECT_EQ(Field(Sub(state, "restored_from"), "memory_backend"), "uffd");
    absl::StatusOr<std::string> page = Get("127.0.0.1", HostPort(state));
    ASSERT_TRUE(page.ok()) << name << ": " << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
    // The stand-in's word: every page it touched came from the server
    // with the memory file's bytes.
    absl::StatusOr<std::string> vmm_log =
        ReadFile(absl::StrCat(state_, "/vms/", name, "/vmm.log"));
    ASSERT_TRUE(vmm_log.ok()) << vmm_log.status();
    EXPECT_THAT(*vmm_log, HasSubstr(absl::StrCat(
                              "uffd restore through ", server_dir,
                              "/uffd.sock")));
    EXPECT_THAT(*vmm_log, HasSubstr(" 0 differ from "));
  }
  // Both clones are the one server's.
  EXPECT_EQ(ServerPid(state_, "u1"), server);

  // The server killed: gc clears what it left once the clones are gone.
  ASSERT_EQ(kill(server, SIGKILL), 0);
  for (int i = 0; i < 100 && Alive(server); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Fcvm({"rm", "-f", "u1-1", "u1-2"}, absl::Minutes(3)).code, 0);
  Result gc = Fcvm({"gc"});
  EXPECT_EQ(gc.code, 0) << gc.err;
  EXPECT_NE(access(absl::StrCat(server_dir, "/uffd.sock").c_str(), F_OK), 0)
      << "a dead server's socket was left";

  // The next clone starts a new server, which leaves with it.
  clone = Fcvm({"clone", "u1", "-d", "--mem-backend", "uffd"});
  ASSERT_EQ(clone.code, 0) << clone.err;
  const pid_t second = ServerPid(state_, "u1");
  ASSERT_GT(second, 0);
  EXPECT_NE(second, server);
  google::protobuf::Struct state = Inspect("u1-1");
  Remember(state);
  ASSERT_TRUE(Get("127.0.0.1", HostPort(state)).ok());
  ASSERT_EQ(Fcvm({"rm", "-f", "u1-1"}, absl::Minutes(3)).code, 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (Alive(second) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(Alive(second)) << "the memory server outlived its last clone";
  EXPECT_NE(access(absl::StrCat(server_dir, "/uffd.sock").c_str(), F_OK), 0);

  // The snapshot is as it was; rm takes the server's place with it.
  EXPECT_EQ(Fingerprint(snapshot_dir), taken);
  ASSERT_EQ(Fcvm({"rm", "-f", "src"}, absl::Minutes(3)).code, 0);
  Result rm = Fcvm({"snapshot", "rm", "u1"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_NE(access(server_dir.c_str(), F_OK), 0) << server_dir << " left";
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, IsEmpty());
}

std::vector<Target> FirecrackerTargets() {
  std::vector<Target> targets;
  for (const Target& target : Targets()) {
    if (target.backend == "firecracker") targets.push_back(target);
  }
  return targets;
}

// QEMU clones map the memory file; this suite has no case under QEMU.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(UffdCloneTest);
INSTANTIATE_TEST_SUITE_P(Firecracker, UffdCloneTest,
                         ::testing::ValuesIn(FirecrackerTargets()),
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
