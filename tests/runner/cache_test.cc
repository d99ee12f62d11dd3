// The startup-snapshot cache end to end: busybox-httpd VMs under QEMU (TCG
// here, user-mode networking) for the host's CPU, detached. A first run
// boots cold and its supervisor stores the entry once it is ready; the
// same run again restores a clone of it with its own name, hostname and
// port, while the first serves on; other env misses; --no-cache stores
// nothing; two first runs at once store one entry; a truncated or garbled
// entry is dropped, saying so in one line, and the run boots cold and
// serves; `cache prune` removes least recently used entries down to
// --cache_max_bytes, never one in use.
//   cache_test --targets=qemu <vm_x86_64> <vm_aarch64> <fcvm> ...
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const google::protobuf::Struct& Sub(const google::protobuf::Struct& s,
                                    const std::string& key) {
  static const google::protobuf::Struct empty;
  auto it = s.fields().find(key);
  return it == s.fields().end() ? empty : it->second.struct_value();
}

std::vector<std::string> Strings(const google::protobuf::Struct& s,
                                 const std::string& key) {
  std::vector<std::string> out;
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return out;
  for (const auto& v : it->second.list_value().values()) {
    out.push_back(v.string_value());
  }
  return out;
}

uint16_t HostPort(const google::protobuf::Struct& state) {
  auto it = state.fields().find("ports");
  if (it == state.fields().end() || it->second.list_value().values_size() == 0)
    return 0;
  const auto& port = it->second.list_value().values(0).struct_value();
  return static_cast<uint16_t>(port.fields().at("host_port").number_value());
}

// The sha256 of an entry's own files: an entry never changes after it is
// stored, whatever the VMs restored from it do.
std::string Fingerprint(const std::string& dir) {
  std::string all;
  for (const char* file : {"vmstate", "memory", "disk"}) {
    absl::StatusOr<std::string> sha = Sha256File(absl::StrCat(dir, "/", file));
    absl::StrAppend(&all, file, "=", sha.ok() ? *sha : sha.status().ToString(),
                    " ");
  }
  return all;
}

// The key a run's stderr names after `marker` ("cache miss ", "cached ").
std::string KeyAfter(const std::string& err, const std::string& marker) {
  const size_t at = err.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  const size_t end = err.find_first_of(" ;)\n", start);
  return err.substr(start, end - start);
}

// The lines of `text` that contain `what`.
std::vector<std::string> LinesWith(const std::string& text,
                                   const std::string& what) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, what)) lines.emplace_back(line);
  }
  return lines;
}

class CacheTest : public FcvmTest {
 protected:
  struct Vm {
    Result run;
    uint16_t port = 0;
    absl::Duration took;
  };

  std::vector<std::string> RunArgv(const std::string& name,
                                   const std::vector<std::string>& extra) {
    // QEMU with user-mode networking: no TAP, no table; a host port of
    // the run's own (not in the key).
    std::vector<std::string> argv = {
        HostVm(), "--backend", "qemu", "-d",
        "--name", name,        "-p",   absl::StrCat(FreePort(), ":8080")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("busybox-httpd");
    return argv;
  }

  // A detached run of busybox-httpd; its VMM remembered for TearDown.
  Vm RunVm(const std::string& name, std::vector<std::string> extra = {}) {
    Vm vm;
    const absl::Time start = absl::Now();
    vm.run = Exec(RunArgv(name, extra), absl::Minutes(8));
    vm.took = absl::Now() - start;
    std::cout << "run " << name << ": " << absl::FormatDuration(vm.took)
              << " code " << vm.run.code << "\n"
              << vm.run.err << std::flush;
    google::protobuf::Struct state = Inspect(name);
    Remember(state);
    vm.port = HostPort(state);
    return vm;
  }

  // `fcvm cache ls --json`.
  std::vector<google::protobuf::Struct> Entries() {
    Result ls = Fcvm({"cache", "ls", "--json"});
    EXPECT_EQ(ls.code, 0) << ls.err;
    google::protobuf::ListValue list;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(ls.out, &list).ok())
        << ls.out;
    std::vector<google::protobuf::Struct> entries;
    for (const auto& v : list.values()) entries.push_back(v.struct_value());
    return entries;
  }
  std::optional<google::protobuf::Struct> Entry(const std::string& key) {
    for (google::protobuf::Struct& entry : Entries()) {
      if (Field(entry, "key") == key) return entry;
    }
    return std::nullopt;
  }
  static uint64_t Bytes(const google::protobuf::Struct& entry) {
    uint64_t bytes = 0;
    (void)absl::SimpleAtoi(Field(entry, "bytes"), &bytes);
    return bytes;
  }

  // Until the entry exists (made by `source_vm`'s fill, if given).
  std::optional<google::protobuf::Struct> WaitForEntry(
      const std::string& key, const std::string& source_vm = "") {
    const absl::Time start = absl::Now();
    const absl::Time deadline = start + absl::Seconds(90);
    while (absl::Now() < deadline) {
      if (std::optional<google::protobuf::Struct> entry = Entry(key);
          entry.has_value() &&
          (source_vm.empty() || Field(*entry, "source_vm") == source_vm)) {
        std::cout << "entry " << key << " after "
                  << absl::FormatDuration(absl::Now() - start) << ", "
                  << Bytes(*entry) << " bytes\n";
        return entry;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    ADD_FAILURE() << "no cache entry " << key << " in 90 s; "
                  << Fcvm({"cache", "ls", "--json"}).out;
    return std::nullopt;
  }

  std::string SupervisorLog(const std::string& name) {
    return ReadFile(absl::StrCat(state_, "/vms/", name, "/supervisor.log"))
        .value_or("");
  }

  // Until the VM's `cache fill` has said how it went in supervisor.log.
  std::string WaitForFill(const std::string& name) {
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    std::string log;
    while (absl::Now() < deadline) {
      log = SupervisorLog(name);
      for (const char* said :
           {"stored startup-cache entry", "another run is storing it",
            "already stored", "startup cache:"}) {
        if (absl::StrContains(log, said)) return log;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    ADD_FAILURE() << name << ": its cache fill said nothing in 90 s:\n" << log;
    return log;
  }

  void ExpectServes(const std::string& name, uint16_t port) {
    ASSERT_NE(port, 0) << name << " has no published port";
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << name << " on " << port << ": " << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd")) << name;
  }

  // `fcvm exec NAME -- hostname`, retried a little (a clone's channel).
  void ExpectHostname(const std::string& name) {
    Result who;
    int attempts = 0;
    for (; attempts < 20; ++attempts) {
      who = Fcvm({"exec", name, "--", "hostname"});
      if (who.code == 0) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    if (attempts > 0)
      std::cout << name << ": exec needed " << attempts + 1 << " attempts\n";
    EXPECT_EQ(who.code, 0) << who.err;
    EXPECT_EQ(who.out, absl::StrCat(name, "\n"));
  }
};

TEST_F(CacheTest, ASecondRunIsACloneOfTheFirstsSnapshotAndPruneIsLru) {
  // A first run misses, boots cold, and stores the entry once ready.
  Vm c1 = RunVm("c1");
  ASSERT_EQ(c1.run.code, 0) << c1.run.err;
  EXPECT_EQ(c1.run.out, "c1\n");
  const std::string key = KeyAfter(c1.run.err, "cold boot (cache miss ");
  ASSERT_FALSE(key.empty()) << c1.run.err;
  EXPECT_THAT(c1.run.err, HasSubstr("fcvm: c1: ready: "));
  google::protobuf::Struct s1 = Inspect("c1");
  EXPECT_EQ(Field(Sub(s1, "cache"), "key"), key);
  EXPECT_NE(Field(Sub(s1, "cache"), "hit"), "true");
  std::optional<google::protobuf::Struct> entry = WaitForEntry(key, "c1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(Field(*entry, "image"), "busybox-httpd");
  EXPECT_EQ(Field(Sub(*entry, "cache_key"), "key"), key);
  EXPECT_GT(Bytes(*entry), 0u);
  EXPECT_THAT(Strings(*entry, "users"), IsEmpty());
  EXPECT_THAT(SupervisorLog("c1"),
              HasSubstr(absl::StrCat("stored startup-cache entry ", key)));
  ExpectServes("c1", c1.port);
  const std::string entry_dir = absl::StrCat(state_, "/cache/", key);
  const std::string stored = Fingerprint(entry_dir);

  // The same image and flags again: a clone of that entry, its own.
  Vm c2 = RunVm("c2");
  ASSERT_EQ(c2.run.code, 0) << c2.run.err;
  EXPECT_EQ(c2.run.out, "c2\n");
  EXPECT_THAT(c2.run.err, HasSubstr(absl::StrCat("fcvm: c2: cached ", key,
                                                 " (snapshot of c1, ")));
  EXPECT_THAT(c2.run.err, Not(HasSubstr("cold boot")));
  EXPECT_LT(c2.took, c1.took);
  google::protobuf::Struct s2 = Inspect("c2");
  EXPECT_EQ(Field(s2, "phase"), "RUNNING");
  EXPECT_EQ(Field(Sub(s2, "restored_from"), "cache_key"), key);
  EXPECT_EQ(Field(Sub(s2, "restored_from"), "snapshot"), "");
  EXPECT_EQ(Field(Sub(s2, "cache"), "key"), key);
  EXPECT_EQ(Field(Sub(s2, "cache"), "hit"), "true");
  EXPECT_NE(c2.port, c1.port);
  ExpectServes("c2", c2.port);
  ExpectHostname("c2");
  ExpectHostname("c1");
  // The first runs on, serving.
  EXPECT_EQ(Field(Inspect("c1"), "phase"), "RUNNING");
  ExpectServes("c1", c1.port);
  entry = Entry(key);
  ASSERT_TRUE(entry.has_value());
  EXPECT_THAT(Strings(*entry, "users"), ElementsAre("c2"));
  // A hit stores nothing, and changes nothing in its entry (the clone
  // wrote to its own memory and disk).
  EXPECT_THAT(SupervisorLog("c2"), Not(HasSubstr("startup-cache entry")));
  ASSERT_EQ(Fcvm({"exec", "c2", "--", "sh", "-c",
                  "dd if=/dev/urandom of=/tmp/junk bs=1M count=8 && sync"})
                .code,
            0);
  EXPECT_EQ(Fingerprint(entry_dir), stored);

  // Other env: another key, a miss.
  Vm c3 = RunVm("c3", {"-e", "X=1"});
  ASSERT_EQ(c3.run.code, 0) << c3.run.err;
  const std::string other = KeyAfter(c3.run.err, "cold boot (cache miss ");
  ASSERT_FALSE(other.empty()) << c3.run.err;
  EXPECT_NE(other, key);
  ASSERT_TRUE(WaitForEntry(other, "c3").has_value());
  ExpectServes("c3", c3.port);

  // --no-cache: cold, nothing stored.
  Vm c4 = RunVm("c4", {"--no-cache"});
  ASSERT_EQ(c4.run.code, 0) << c4.run.err;
  EXPECT_THAT(c4.run.err, HasSubstr("fcvm: c4: cold boot (--no-cache"));
  EXPECT_THAT(c4.run.err, Not(HasSubstr("cache miss")));
  google::protobuf::Struct s4 = Inspect("c4");
  EXPECT_EQ(Field(Sub(s4, "cache"), "key"), "");
  EXPECT_EQ(Field(Sub(s4, "restored_from"), "cache_key"), "");
  ExpectServes("c4", c4.port);
  absl::SleepFor(absl::Seconds(5));
  EXPECT_EQ(Entries().size(), 2u);
  EXPECT_THAT(SupervisorLog("c4"), Not(HasSubstr("startup-cache")));

  // Prune: `key` was last used at c2's restore, before `other` was made.
  // In use by c2 it stays: over the limit, exit 1.
  std::optional<google::protobuf::Struct> a = Entry(key), b = Entry(other);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_LT(std::stoll(Field(*a, "last_used_unix_ms")),
            std::stoll(Field(*b, "last_used_unix_ms")));
  Result unchanged =
      Fcvm({absl::StrCat("--cache_max_bytes=", Bytes(*a) + Bytes(*b)), "cache",
            "prune"});
  EXPECT_EQ(unchanged.code, 0) << unchanged.err;
  EXPECT_EQ(unchanged.out, "");
  EXPECT_EQ(Entries().size(), 2u);
  Result in_use = Fcvm(
      {absl::StrCat("--cache_max_bytes=", Bytes(*b) / 2), "cache", "prune"});
  std::cout << "prune below one entry, key in use:\n" << in_use.err;
  EXPECT_EQ(in_use.code, 1) << in_use.err;
  EXPECT_THAT(in_use.err, HasSubstr(absl::StrCat("kept, in use: ", key)));
  EXPECT_EQ(in_use.out, absl::StrCat(other, "\n"));
  ASSERT_TRUE(Entry(key).has_value());
  ASSERT_FALSE(Entry(other).has_value());

  // `other` again (made by c5's fill, now the newest); c2 gone, so `key`
  // is unused: the limit between one entry and two removes `key` only.
  Result rm = Fcvm({"rm", "-f", "c2"}, absl::Minutes(3));
  ASSERT_EQ(rm.code, 0) << rm.err;
  Vm c5 = RunVm("c5", {"-e", "X=1"});
  ASSERT_EQ(c5.run.code, 0) << c5.run.err;
  EXPECT_THAT(c5.run.err, HasSubstr(absl::StrCat("cache miss ", other)));
  b = WaitForEntry(other, "c5");
  ASSERT_TRUE(b.has_value());
  const uint64_t limit =
      std::max(Bytes(*a), Bytes(*b)) + std::min(Bytes(*a), Bytes(*b)) / 2;
  Result pruned =
      Fcvm({absl::StrCat("--cache_max_bytes=", limit), "cache", "prune"});
  std::cout << "prune to " << limit << ":\n" << pruned.err;
  EXPECT_EQ(pruned.code, 0) << pruned.err;
  EXPECT_EQ(pruned.out, absl::StrCat(key, "\n"));
  std::vector<google::protobuf::Struct> left = Entries();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(Field(left[0], "key"), other);
  // The VMs run on.
  ExpectServes("c1", c1.port);
  ExpectServes("c5", c5.port);
}

TEST_F(CacheTest, TwoFirstRunsStoreOneEntryAndADamagedEntryIsDropped) {
  // Two first runs at once (a key of this test's own).
  const std::string env =
      absl::StrCat("RACE=", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  std::vector<Subprocess> runs;
  const absl::Time start = absl::Now();
  for (const char* name : {"r1", "r2"}) {
    SubprocessOptions options;
    options.argv = RunArgv(name, {"-e", env});
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> run = Subprocess::Start(std::move(options));
    ASSERT_TRUE(run.ok()) << run.status();
    runs.push_back(std::move(*run));
  }
  std::vector<std::string> errs;
  for (Subprocess& run : runs) {
    absl::StatusOr<Subprocess::Output> output =
        run.Communicate("", absl::Minutes(8));
    ASSERT_TRUE(output.ok()) << output.status();
    std::cout << output->stderr_data;
    EXPECT_EQ(output->exit.code, 0) << output->stderr_data;
    errs.push_back(output->stderr_data);
  }
  std::cout << "both ready in " << absl::FormatDuration(absl::Now() - start)
            << "\n";
  for (const char* name : {"r1", "r2"}) Remember(Inspect(name));
  const std::string key = KeyAfter(errs[0], "cold boot (cache miss ");
  ASSERT_FALSE(key.empty()) << errs[0];
  // Both missed (or the second found it stored already).
  EXPECT_TRUE(absl::StrContains(errs[1], absl::StrCat("cache miss ", key)) ||
              absl::StrContains(errs[1], absl::StrCat("cached ", key)))
      << errs[1];
  const std::string log1 = WaitForFill("r1");
  const std::string log2 =
      absl::StrContains(errs[1], "cached ") ? "" : WaitForFill("r2");
  std::cout << "r1 fill: " << absl::StrJoin(LinesWith(log1, "cache"), " | ")
            << "\nr2 fill: " << absl::StrJoin(LinesWith(log2, "cache"), " | ")
            << "\n";
  const int stored = absl::StrContains(log1, "stored startup-cache entry") +
                     absl::StrContains(log2, "stored startup-cache entry");
  EXPECT_EQ(stored, 1) << log1 << "\n----\n" << log2;
  if (!log2.empty()) {
    const std::string both = log1 + log2;
    EXPECT_TRUE(absl::StrContains(both, "another run is storing it") ||
                absl::StrContains(both, "already stored"))
        << both;
  }
  EXPECT_THAT(log1 + log2, Not(HasSubstr("startup cache:")));
  std::vector<google::protobuf::Struct> entries = Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(Field(entries[0], "key"), key);
  const std::string source = Field(entries[0], "source_vm");
  EXPECT_TRUE(source == "r1" || source == "r2") << source;
  // No partial snapshot left behind.
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(state_ + "/cache")) {
    files.push_back(f.path().filename().string());
  }
  for (const std::string& f : files) {
    EXPECT_FALSE(absl::StartsWith(f, ".partial")) << f;
  }
  ExpectServes("r1", HostPort(Inspect("r1")));
  ExpectServes("r2", HostPort(Inspect("r2")));

  // Its vmstate cut to half: dropped in one line, a cold boot that serves,
  // then a fresh entry from this run.
  const std::string vmstate = absl::StrCat(state_, "/cache/", key, "/vmstate");
  struct stat st;
  ASSERT_EQ(stat(vmstate.c_str(), &st), 0) << vmstate;
  ASSERT_GT(st.st_size, 0);
  ASSERT_EQ(truncate(vmstate.c_str(), st.st_size / 2), 0);
  Vm r3 = RunVm("r3", {"-e", env});
  ASSERT_EQ(r3.run.code, 0) << r3.run.err;
  EXPECT_EQ(r3.run.out, "r3\n");
  std::vector<std::string> dropped = LinesWith(r3.run.err, "dropped");
  ASSERT_EQ(dropped.size(), 1u) << r3.run.err;
  EXPECT_THAT(dropped[0], HasSubstr(absl::StrCat("fcvm: r3: cache entry ", key,
                                                 " dropped (")));
  EXPECT_THAT(dropped[0], HasSubstr("vmstate"));
  EXPECT_THAT(dropped[0], HasSubstr("cold boot, storing a new one"));
  // One line: no "cache miss" line after it.
  EXPECT_THAT(r3.run.err, Not(HasSubstr("cache miss")));
  google::protobuf::Struct s3 = Inspect("r3");
  EXPECT_EQ(Field(Sub(s3, "restored_from"), "cache_key"), "");
  EXPECT_NE(Field(Sub(s3, "cache"), "hit"), "true");
  ExpectServes("r3", r3.port);
  ExpectHostname("r3");
  if (std::optional<google::protobuf::Struct> now = Entry(key);
      now.has_value()) {
    EXPECT_EQ(Field(*now, "source_vm"), "r3");  // Only ever a fresh one.
  }
  ASSERT_TRUE(WaitForEntry(key, "r3").has_value());

  // The fresh entry's vmstate garbled at its size (it passes the checks):
  // QEMU refuses it, the clone goes, the run says so and boots cold.
  ASSERT_EQ(stat(vmstate.c_str(), &st), 0) << vmstate;
  ASSERT_TRUE(WriteFileAtomically(vmstate, std::string(st.st_size, 'x')).ok());
  Vm r4 = RunVm("r4", {"-e", env});
  ASSERT_EQ(r4.run.code, 0) << r4.run.err;
  EXPECT_EQ(r4.run.out, "r4\n");
  std::vector<std::string> refused = LinesWith(r4.run.err, "did not restore");
  ASSERT_EQ(refused.size(), 1u) << r4.run.err;
  EXPECT_THAT(refused[0], HasSubstr(absl::StrCat("fcvm: r4: cache entry ", key,
                                                 " did not restore (")));
  EXPECT_THAT(refused[0], HasSubstr("cold boot, storing a new one"));
  EXPECT_THAT(refused[0], HasSubstr("loading the device state"));
  EXPECT_THAT(r4.run.err, Not(HasSubstr("cache miss")));
  google::protobuf::Struct s4 = Inspect("r4");
  EXPECT_EQ(Field(s4, "phase"), "RUNNING");
  EXPECT_EQ(Field(Sub(s4, "restored_from"), "cache_key"), "");
  EXPECT_NE(Field(Sub(s4, "cache"), "hit"), "true");
  ExpectServes("r4", r4.port);
  ExpectHostname("r4");
  absl::StatusOr<std::vector<std::string>> names = Names();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ElementsAre("r1", "r2", "r3", "r4"));
  ASSERT_TRUE(WaitForEntry(key, "r4").has_value());
  // And that one restores.
  Vm r5 = RunVm("r5", {"-e", env});
  ASSERT_EQ(r5.run.code, 0) << r5.run.err;
  EXPECT_THAT(r5.run.err,
              HasSubstr(absl::StrCat("cached ", key, " (snapshot of r4, ")));
  ExpectServes("r5", r5.port);

  // A restore that fails for the run's own reason (its host port taken)
  // fails that run alone: the entry stays, no cold boot is tried.
  UniqueFd taken(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(taken.valid());
  const uint16_t busy = FreePort();
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(busy);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      bind(taken.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  ASSERT_EQ(listen(taken.get(), 1), 0);
  Result r6 = Exec({HostVm(), "--backend", "qemu", "-d", "--name", "r6", "-p",
                    absl::StrCat(busy, ":8080"), "-e", env, "busybox-httpd"},
                   absl::Minutes(3));
  Remember(Inspect("r6"));
  EXPECT_NE(r6.code, 0) << r6.err;
  EXPECT_THAT(r6.err, HasSubstr(absl::StrCat("cached ", key)));
  EXPECT_THAT(r6.err, HasSubstr("ended before it was ready"));
  EXPECT_THAT(r6.err, Not(HasSubstr("did not restore")));
  EXPECT_THAT(r6.err, Not(HasSubstr("cold boot")));
  EXPECT_TRUE(Entry(key).has_value()) << "the entry was removed";
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
