// //uffd:server against real userfaultfd clients: each uffd_client process
// does what Firecracker does at a snapshot restore (anonymous memory,
// userfaultfd with EVENT_REMOVE, MISSING registration, the JSON handshake
// with the fd) and then checks every byte it touches against the memory
// file.
//   server_test <uffd/server> <uffd/testing/uffd_client> <runner/fcvm>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

std::string g_server, g_client, g_fcvm;

constexpr uint64_t kMemoryBytes = 32 << 20;

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: the socket path must fit sun_path.
    char dir[] = "/tmp/fcvm-uffd-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    memory_ = dir_ + "/memory";
    socket_ = dir_ + "/uffd.sock";
    log_ = dir_ + "/server.log";
    // Random bytes, so that a page copied from the wrong offset shows.
    std::string bytes(kMemoryBytes, '\0');
    std::mt19937_64 random(42);
    for (size_t i = 0; i < bytes.size(); i += 8) {
      const uint64_t v = random();
      std::memcpy(&bytes[i], &v, 8);
    }
    ASSERT_TRUE(WriteFileAtomically(memory_, bytes, 0644).ok());
  }

  void TearDown() override {
    if (server_.has_value()) {
      (void)server_->Signal(SIGTERM);
      (void)server_->Wait(absl::Seconds(10));
    }
    server_.reset();
    std::cout << "--- server log ---\n" << Log();
    nftw(dir_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
  }

  // `command`: how the server is started (default //uffd:server).
  void StartServer(std::vector<std::string> flags = {},
                   std::vector<std::string> command = {}) {
    SubprocessOptions options;
    if (command.empty()) command = {g_server};
    options.argv = command;
    for (const std::string& arg :
         {memory_, std::string("--socket"), socket_, std::string("--threads"),
          std::string("2")}) {
      options.argv.push_back(arg);
    }
    options.argv.insert(options.argv.end(), flags.begin(), flags.end());
    options.stderr_mode = StdioMode::kFile;
    options.stderr_file = log_;
    absl::StatusOr<Subprocess> server = Subprocess::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(std::move(*server));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    struct stat st;
    while (stat(socket_.c_str(), &st) != 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_TRUE(S_ISSOCK(st.st_mode)) << Log();
    EXPECT_EQ(st.st_mode & 0777, 0600);
  }

  std::vector<std::string> ClientArgv(std::vector<std::string> flags) {
    std::vector<std::string> argv = {g_client, "--socket", socket_, "--memory",
                                     memory_};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  // Runs one client to its end; its JSON line.
  google::protobuf::Struct Client(std::vector<std::string> flags,
                                  int* exit_code = nullptr) {
    SubprocessOptions options;
    options.argv = ClientArgv(std::move(flags));
    absl::StatusOr<Subprocess::Output> out =
        RunCommandAnyExit(std::move(options));
    google::protobuf::Struct result;
    if (exit_code != nullptr) *exit_code = out.ok() ? out->exit.code : -1;
    if (out.ok()) {
      (void)google::protobuf::util::JsonStringToMessage(out->stdout_data,
                                                        &result);
    }
    return result;
  }

  static absl::StatusOr<Subprocess::Output> RunCommandAnyExit(
      SubprocessOptions options) {
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(options));
    if (!process.ok()) return process.status();
    return process->Communicate("", absl::Minutes(2));
  }

  static double Number(const google::protobuf::Struct& s,
                       const std::string& key) {
    auto it = s.fields().find(key);
    return it == s.fields().end() ? -1 : it->second.number_value();
  }

  std::string Log() const { return ReadFile(log_).value_or(""); }

  // Waits until the log holds `text` `count` times.
  bool WaitForLog(const std::string& text, int count = 1,
                  absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      const std::string log = Log();
      int seen = 0;
      for (size_t at = log.find(text); at != std::string::npos;
           at = log.find(text, at + 1)) {
        ++seen;
      }
      if (seen >= count) return true;
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // The server's open descriptors and resident memory (KiB).
  int OpenFds() const {
    int n = 0;
    DIR* dir = opendir(absl::StrCat("/proc/", server_->pid(), "/fd").c_str());
    if (dir == nullptr) return -1;
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
    return n - 2;
  }
  int64_t RssKib() const {
    const std::string status =
        ReadFile(absl::StrCat("/proc/", server_->pid(), "/status"))
            .value_or("");
    for (absl::string_view line : absl::StrSplit(status, '\n')) {
      if (absl::ConsumePrefix(&line, "VmRSS:")) {
        int64_t kib = 0;
        (void)absl::SimpleAtoi(
            absl::StripAsciiWhitespace(absl::StripSuffix(line, "kB")), &kib);
        return kib;
      }
    }
    return -1;
  }

  std::string dir_, memory_, socket_, log_;
  std::optional<Subprocess> server_;
};

TEST_F(ServerTest, EveryByteFromEveryFirecrackerVariant) {
  StartServer({"--record_window=0"});
  for (const std::string variant : {"1.4", "1.10", "1.12"}) {
    int code = -1;
    google::protobuf::Struct result =
        Client({"--variant", variant, "--threads", "4"}, &code);
    EXPECT_EQ(code, 0) << variant;
    EXPECT_EQ(Number(result, "pages"), 2 * 8 * 256) << variant;
    EXPECT_EQ(Number(result, "mismatches"), 0) << variant;
  }
  EXPECT_TRUE(WaitForLog("left (its process exited)", 3)) << Log();
  EXPECT_THAT(Log(), HasSubstr("faults 4096 (16.0 MiB, 0 zero)"));
}

TEST_F(ServerTest, ThirtyTwoVmsAtOnce) {
  StartServer({"--record_window=0"});
  std::vector<Subprocess> clients;
  for (int i = 0; i < 32; ++i) {
    SubprocessOptions options;
    options.argv = ClientArgv(
        {"--regions", "1", "--region_mib", "4", "--threads", "2", "--hold"});
    options.stdin_mode = StdioMode::kPipe;
    options.stdout_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> client = Subprocess::Start(std::move(options));
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(std::move(*client));
  }
  // All 32 connected and served at once (each holds its VM open).
  ASSERT_TRUE(WaitForLog("region(s)", 32)) << Log();
  for (Subprocess& client : clients) {
    // The result line comes before the hold.
    std::string line;
    char c;
    while (read(client.stdout_pipe().get(), &c, 1) == 1 && c != '\n') {
      line.push_back(c);
    }
    google::protobuf::Struct result;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &result).ok())
        << line;
    EXPECT_EQ(Number(result, "pages"), 1024);
    EXPECT_EQ(Number(result, "mismatches"), 0);
  }
  (void)server_->Signal(SIGUSR1);
  EXPECT_TRUE(WaitForLog("32 VM(s) being served")) << Log();
  for (Subprocess& client : clients) {
    client.stdin_pipe().reset();
    absl::StatusOr<ExitStatus> exit = client.Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok());
    EXPECT_TRUE(exit->success());
  }
  EXPECT_TRUE(WaitForLog("left (its process exited)", 32)) << Log();
}

TEST_F(ServerTest, RemovedPagesReadBackAsZeros) {
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result = Client(
      {"--regions", "1", "--region_mib", "2", "--dontneed", "64"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "zero_mismatches"), 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog("left (its process exited)")) << Log();
  EXPECT_THAT(Log(), HasSubstr("removes 64 (256 KiB)"));
  EXPECT_THAT(Log(), HasSubstr("faults 576 (2.2 MiB, 64 zero)"));
}

// Pages given back while other threads fault: REMOVE events arrive among
// the faults (a copy can then meet EAGAIN: the server reads the events and
// retries). Every byte must still be right: the file's, or zeros once
// given back.
TEST_F(ServerTest, RemovesAmongFaults) {
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result =
      Client({"--regions", "1", "--region_mib", "16", "--threads", "2",
              "--churn_pages", "64", "--churn_rounds", "50"},
             &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog("left (its process exited)")) << Log();
  EXPECT_THAT(Log(), HasSubstr("removes 3200 (12.5 MiB)"));
  EXPECT_THAT(Log(), HasSubstr(", 3136 zero)"));  // 64 pages x 49 rounds.
  const std::string log = Log();
  const size_t at = log.find("eagain ");
  std::cout << "EAGAIN retries in this run: "
            << log.substr(at + 7, log.find(',', at) - at - 7) << "\n";
}

TEST_F(ServerTest, BadHandshakesAreRefusedWhileAGoodVmIsServed) {
  StartServer({"--record_window=0", "--handshake_timeout=1s"});
  // A good VM that stays, its memory half touched.
  SubprocessOptions options;
  options.argv = ClientArgv(
      {"--regions", "1", "--region_mib", "4", "--pages", "512", "--hold"});
  options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> good = Subprocess::Start(std::move(options));
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(WaitForLog("region(s)")) << Log();

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"bad_json", "not a JSON array of regions"},
      {"not_array", "not a JSON array of regions"},
      {"unknown_field", "handshake regions"},
      {"no_fd", "no file descriptor came with it"},
      {"two_fds", "2 file descriptors came with it"},
      {"not_uffd", "is not a userfaultfd but /tmp/fcvm-uffd-test"},
      {"outside_file", "past the end of the memory file"},
      {"overlap", "regions overlap"},
      {"absurd_size", "past the end of the memory file"},
      {"silent", "nothing arrived within 1s"},
  };
  for (const auto& [kind, says] : bad) {
    int code = -1;
    google::protobuf::Struct result = Client({"--malformed", kind}, &code);
    EXPECT_EQ(code, 0) << kind;
    EXPECT_TRUE(WaitForLog(says)) << kind << "\n" << Log();
  }
  EXPECT_TRUE(WaitForLog("refused the handshake from pid", bad.size()));
  // A userfaultfd the peer never initialised: accepted (it is one), then
  // dropped at once, alone.
  EXPECT_TRUE(Client({"--malformed", "uninitialized_uffd"})
                  .fields()
                  .contains("closed"));
  EXPECT_TRUE(WaitForLog("left (its uffd reported an error)")) << Log();
  // One that handshakes and leaves at once: dropped when the server sees it
  // gone, or refused if it was gone before the server could watch it.
  EXPECT_EQ(Client({"--malformed", "exit_after_handshake"}).fields().size(),
            0u);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!absl::StrContains(Log(), "left (its process exited)") &&
         !absl::StrContains(Log(), "exited before its handshake was read") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::StrContains(Log(), "left (its process exited)") ||
              absl::StrContains(Log(), "exited before its handshake was read"))
      << Log();

  // The good VM touches the rest of its memory now: all served, all right.
  SubprocessOptions rest;
  rest.argv = ClientArgv(
      {"--regions", "1", "--region_mib", "4", "--first_page", "512"});
  int code = -1;
  google::protobuf::Struct result = Client(
      {"--regions", "1", "--region_mib", "4", "--first_page", "512"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  good->stdin_pipe().reset();
  absl::StatusOr<ExitStatus> exit = good->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(exit->success());
  // The first good VM was never disturbed: it left only when it exited.
  EXPECT_THAT(Log(), HasSubstr("vm 1 pid"));
  EXPECT_THAT(Log(), ::testing::Not(HasSubstr("vm 1 pid 0")));
}

TEST_F(ServerTest, DescriptorsAndMemoryStayFlatOverThousandsOfVms) {
  StartServer({"--record_window=0"});
  auto cycle = [&] {
    int code = -1;
    Client({"--regions", "1", "--region_mib", "1", "--pages", "4", "--threads",
            "1"},
           &code);
    return code;
  };
  for (int i = 0; i < 100; ++i) ASSERT_EQ(cycle(), 0);  // Warm up.
  ASSERT_TRUE(WaitForLog("left (its process exited)", 100)) << Log();
  const int fds = OpenFds();
  const int64_t rss = RssKib();
  constexpr int kCycles = 2000;
  for (int i = 0; i < kCycles; ++i) ASSERT_EQ(cycle(), 0) << "cycle " << i;
  ASSERT_TRUE(WaitForLog("left (its process exited)", 100 + kCycles)) << Log();
  std::cout << "after " << kCycles << " VMs: fds " << fds << " -> " << OpenFds()
            << ", RSS " << rss << " -> " << RssKib() << " KiB\n";
  EXPECT_EQ(OpenFds(), fds);
  EXPECT_LT(RssKib() - rss, 2048);
}

// Free 2 MiB huge pages on this host (HugePages_Free, when the default
// huge page size is 2 MiB).
int64_t FreeHugePages() {
  const std::string meminfo = ReadFile("/proc/meminfo").value_or("");
  if (!absl::StrContains(meminfo, "Hugepagesize:       2048 kB")) return 0;
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (absl::ConsumePrefix(&line, "HugePages_Free:")) {
      int64_t free = 0;
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &free);
      return free;
    }
  }
  return 0;
}

TEST_F(ServerTest, HugetlbfsPagesOf2MiB) {
  // Firecracker's huge_pages "2M": regions in 2 MiB pages, copied whole.
  const int64_t free = FreeHugePages();
  if (free < 8) {
    GTEST_SKIP() << "needs 8 free 2 MiB huge pages (vm.nr_hugepages); this "
                    "host has "
                 << free;
  }
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result =
      Client({"--regions", "2", "--region_mib", "4", "--page_size", "2097152",
              "--threads", "2", "--dontneed", "1"},
             &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "pages"), 4);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  EXPECT_EQ(Number(result, "zero_mismatches"), 0);
}

TEST_F(ServerTest, FcvmServeIsTheSameServerAndCanExitWhenIdle) {
  StartServer({"--record_window", "0", "--exit_when_idle"}, {g_fcvm, "serve"});
  int code = -1;
  google::protobuf::Struct result =
      Client({"--regions", "1", "--region_mib", "2"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  absl::StatusOr<ExitStatus> exit = server_->Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << "still serving with no VM left\n" << Log();
  EXPECT_TRUE(exit->success());
  EXPECT_THAT(Log(), HasSubstr("the last VM has gone: exiting"));
  server_.reset();
}

// The on-demand faults of the VM that left last, from its log line.
int64_t FaultsOfLastVm(const std::string& log) {
  const size_t at = log.rfind("left (its process exited)");
  if (at == std::string::npos) return -1;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  const size_t f = line.find(": faults ");
  int64_t faults = -1;
  if (f == std::string::npos ||
      !absl::SimpleAtoi(line.substr(f + 9, line.find(' ', f + 9) - f - 9),
                        &faults)) {
    return -1;
  }
  return faults;
}

TEST_F(ServerTest, LaterVmsWithTheSameAccessesArePrefetched) {
  // The first VM's working set: every third page of its first 4 MiB. The
  // client waits 20 ms after its handshake before touching memory, as
  // Firecracker finishes restoring devices and is then resumed.
  StartServer({"--record_window=60s"});
  const std::vector<std::string> pattern = {
      "--regions", "1", "--region_mib", "8", "--pages",     "1024",
      "--stride",  "3", "--threads",    "2", "--settle_ms", "20"};
  int code = -1;
  google::protobuf::Struct first = Client(pattern, &code);
  ASSERT_EQ(code, 0);
  ASSERT_TRUE(WaitForLog("working set: 342 pages written")) << Log();
  EXPECT_EQ(FaultsOfLastVm(Log()), 342);

  // The next VM on the same server gets the set in batches first.
  google::protobuf::Struct second = Client(pattern, &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(Number(second, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog("left (its process exited)", 2)) << Log();
  EXPECT_THAT(Log(), HasSubstr("prefetching 342 pages in"));
  EXPECT_THAT(Log(), HasSubstr("prefetched 342 pages (1.3 MiB)"));
  EXPECT_LE(FaultsOfLastVm(Log()), 34) << "more than 10% raced the prefetch";
  EXPECT_THAT(Log(), HasSubstr(", outside 0,")) << "the set missed pages";

  // A server started later finds the set beside the memory file.
  (void)server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->Wait(absl::Seconds(10)).ok());
  server_.reset();
  StartServer({"--record_window=60s"});
  ASSERT_TRUE(WaitForLog("prefetching a working set of 342 pages")) << Log();
  google::protobuf::Struct third = Client(pattern, &code);
  ASSERT_EQ(code, 0);
  ASSERT_TRUE(WaitForLog("left (its process exited)", 3)) << Log();
  EXPECT_LE(FaultsOfLastVm(Log()), 34);
  std::cout << "touch p50: first VM " << Number(first, "fault_p50_ns")
            << " ns, prefetched VMs " << Number(second, "fault_p50_ns")
            << " and " << Number(third, "fault_p50_ns") << " ns\n";
}

}  // namespace
}  // namespace fcvm::uffd

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 4) {
    std::cerr << "usage: server_test <uffd/server> <uffd_client> <fcvm>\n";
    return 2;
  }
  fcvm::uffd::g_server = argv[1];
  fcvm::uffd::g_client = argv[2];
  fcvm::uffd::g_fcvm = argv[3];
  return RUN_ALL_TESTS();
}
