// //uffd:server against real userfaultfd clients: each uffd_client process
// does what Firecracker does at a snapshot restore (anonymous memory,
// userfaultfd with EVENT_REMOVE, MISSING registration, the JSON handshake
// with the fd) and then checks every byte it touches against the memory
// file. The server's log is read through a pipe: the tests wait for its
// lines (its first, "serving ...", says it listens), never for time.
//   server_test <uffd/server> <uffd/testing/uffd_client> <runner/fcvm>
//               <uffd/testing/in_new_pid_namespace>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string g_server, g_client, g_fcvm, g_pid_namespace;

constexpr uint64_t kMemoryBytes = 32 << 20;
// How long a test waits for what must happen before calling it a failure.
constexpr absl::Duration kPatience = absl::Seconds(30);

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

// Occurrences of `text` in `log`.
int Count(const std::string& log, const std::string& text) {
  int seen = 0;
  for (size_t at = log.find(text); at != std::string::npos;
       at = log.find(text, at + 1)) {
    ++seen;
  }
  return seen;
}

google::protobuf::Struct Json(const std::string& line) {
  google::protobuf::Struct result;
  (void)google::protobuf::util::JsonStringToMessage(line, &result);
  return result;
}

double Number(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? -1 : it->second.number_value();
}

// Whether a line of `log` starts with "fcvm-uffd: " `prefix` and holds
// `text`.
bool HasLine(const std::string& log, const std::string& prefix,
             const std::string& text) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::ConsumePrefix(&line, "fcvm-uffd: ") &&
        absl::StartsWith(line, prefix) && absl::StrContains(line, text)) {
      return true;
    }
  }
  return false;
}

// One line from `fd`, waiting at most kPatience (empty: none came).
std::string ReadLine(int fd) {
  std::string line;
  const absl::Time deadline = absl::Now() + kPatience;
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0 || poll(&p, 1, static_cast<int>(ms)) <= 0) return "";
    char c;
    if (read(fd, &c, 1) != 1) return "";
    if (c == '\n') return line;
    line.push_back(c);
  }
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
    StopServer();
    std::cout << "--- server log ---\n" << Log();
    nftw(dir_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
  }

  // `command`: how the server is started (default //uffd:server);
  // `in_pid_namespace`: as pid 1 of a pid namespace of its own. Returns
  // once its first log line says it listens.
  void StartServer(std::vector<std::string> flags = {},
                   std::vector<std::string> command = {},
                   bool in_pid_namespace = false) {
    StopServer();
    SubprocessOptions options;
    if (in_pid_namespace) options.argv.push_back(g_pid_namespace);
    if (command.empty()) command = {g_server};
    options.argv.insert(options.argv.end(), command.begin(), command.end());
    for (const std::string& arg :
         {memory_, std::string("--socket"), socket_, std::string("--threads"),
          std::string("2")}) {
      options.argv.push_back(arg);
    }
    options.argv.insert(options.argv.end(), flags.begin(), flags.end());
    options.stderr_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> server = Subprocess::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(std::move(*server));
    wrapped_ = in_pid_namespace;
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_open_ = true;
    }
    reader_ = std::thread([this, fd = server_->stderr_pipe().release()] {
      UniqueFd pipe(fd);
      char buffer[4096];
      for (;;) {
        const ssize_t n = read(pipe.get(), buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard<std::mutex> lock(mu_);
        if (n <= 0) {
          log_open_ = false;
          changed_.notify_all();
          return;
        }
        log_.append(buffer, n);
        changed_.notify_all();
      }
    });
    ++starts_;
    ASSERT_TRUE(WaitForLog("fcvm-uffd: serving ", starts_)) << Log();
    struct stat st;
    ASSERT_EQ(stat(socket_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600);
  }

  void StopServer() {
    if (server_.has_value() && !server_->finished()) {
      (void)server_->Signal(SIGTERM);
      (void)server_->Wait(absl::Seconds(10));
    }
    server_.reset();  // Kills it if it is still there.
    if (reader_.joinable()) reader_.join();
  }

  std::vector<std::string> ClientArgv(std::vector<std::string> flags) {
    std::vector<std::string> argv = {g_client, "--socket", socket_, "--memory",
                                     memory_};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  // Runs one client to its end; its (first) JSON line.
  google::protobuf::Struct Client(std::vector<std::string> flags,
                                  int* exit_code = nullptr) {
    SubprocessOptions options;
    options.argv = ClientArgv(std::move(flags));
    options.stdout_mode = StdioMode::kPipe;
    options.stderr_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(options));
    absl::StatusOr<Subprocess::Output> out =
        process.ok() ? process->Communicate("", absl::Minutes(2))
                     : absl::StatusOr<Subprocess::Output>(process.status());
    if (exit_code != nullptr) *exit_code = out.ok() ? out->exit.code : -1;
    if (!out.ok()) return {};
    return Json(out->stdout_data.substr(0, out->stdout_data.find('\n')));
  }

  // A client that stays (--hold) and touches more on request.
  Subprocess HeldClient(std::vector<std::string> flags) {
    SubprocessOptions options;
    flags.push_back("--hold");
    options.argv = ClientArgv(std::move(flags));
    options.stdin_mode = StdioMode::kPipe;
    options.stdout_mode = StdioMode::kPipe;
    absl::StatusOr<Subprocess> client = Subprocess::Start(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }
  // Tells a held client to touch pages [first, first + count); its result.
  google::protobuf::Struct TouchMore(Subprocess& client, uint64_t first,
                                     uint64_t count) {
    const std::string command = absl::StrCat("touch ", first, " ", count, "\n");
    EXPECT_EQ(write(client.stdin_pipe().get(), command.data(), command.size()),
              static_cast<ssize_t>(command.size()));
    return Json(ReadLine(client.stdout_pipe().get()));
  }
  // Closes its stdin: it exits, successfully if every byte was right.
  void Release(Subprocess& client) {
    client.stdin_pipe().reset();
    absl::StatusOr<ExitStatus> exit = client.Wait(kPatience);
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_TRUE(exit->success()) << exit->ToString();
  }

  std::string Log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

  // Waits until the log holds `text` `count` times (false: the timeout
  // passed, or the server's log ended without it).
  bool WaitForLog(const std::string& text, int count = 1,
                  absl::Duration timeout = kPatience) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoSeconds(timeout), [&] {
      return Count(log_, text) >= count || !log_open_;
    }) && Count(log_, text) >= count;
  }

  // Waits until `done(log)` (false: the timeout passed, or the server's log
  // ended without it).
  bool WaitUntil(const std::function<bool(const std::string&)>& done,
                 absl::Duration timeout = kPatience) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoSeconds(timeout), [&] {
      return done(log_) || !log_open_;
    }) && done(log_);
  }

  // The server process itself (inside the wrapper, if any).
  pid_t ServerPid() const {
    if (!wrapped_) return server_->pid();
    const std::string children =
        ReadFile(absl::StrCat("/proc/", server_->pid(), "/task/",
                              server_->pid(), "/children"))
            .value_or("");
    pid_t pid = -1;
    (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(children), &pid);
    return pid;
  }

  // The server's open descriptors, resident memory (KiB), CPU time.
  int OpenFds() const {
    int n = 0;
    DIR* dir = opendir(absl::StrCat("/proc/", ServerPid(), "/fd").c_str());
    if (dir == nullptr) return -1;
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
    return n - 2;
  }
  int64_t RssKib() const {
    const std::string status =
        ReadFile(absl::StrCat("/proc/", ServerPid(), "/status")).value_or("");
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
  absl::Duration CpuTime() const {
    const std::string stat =
        ReadFile(absl::StrCat("/proc/", ServerPid(), "/stat")).value_or("");
    // After the command's closing parenthesis: state is field 3, utime 14,
    // stime 15.
    const std::vector<std::string> fields =
        absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
    int64_t utime = 0, stime = 0;
    if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
        !absl::SimpleAtoi(fields[12], &stime)) {
      return absl::InfiniteDuration();
    }
    return absl::Seconds(utime + stime) / sysconf(_SC_CLK_TCK);
  }

  std::string dir_, memory_, socket_;
  std::optional<Subprocess> server_;
  bool wrapped_ = false;
  int starts_ = 0;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::string log_;
  bool log_open_ = false;
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
  EXPECT_TRUE(WaitForLog(" left (", 3)) << Log();
  EXPECT_EQ(Count(Log(), "faults 4096 (16.0 MiB, 0 zero)"), 3) << Log();
}

TEST_F(ServerTest, ASplitHandshakeIsReadToItsEnd) {
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result = Client(
      {"--regions", "2", "--region_mib", "1", "--split_handshake"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "pages"), 512);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  EXPECT_THAT(Log(), Not(HasSubstr("refused")));
}

TEST_F(ServerTest, FieldsOfANewerFirecrackerAreAcceptedAndLoggedOnce) {
  StartServer({"--record_window=0"});
  for (int i = 0; i < 2; ++i) {
    int code = -1;
    google::protobuf::Struct result =
        Client({"--regions", "1", "--region_mib", "1", "--extra_fields",
                R"("gpa_start":0,"is_guest_memfd":false)"},
               &code);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(Number(result, "mismatches"), 0);
  }
  ASSERT_TRUE(WaitForLog(" left (", 2)) << Log();
  EXPECT_EQ(Count(Log(), "has fields this server does not know"), 1) << Log();
  EXPECT_THAT(Log(), HasSubstr("(each name logged once): gpa_start, "
                               "is_guest_memfd\n"));
}

TEST_F(ServerTest, ThirtyTwoVmsAtOnce) {
  StartServer({"--record_window=0"});
  std::vector<Subprocess> clients;
  for (int i = 0; i < 32; ++i) {
    clients.push_back(
        HeldClient({"--regions", "1", "--region_mib", "4", "--threads", "2"}));
  }
  // All 32 connected and served at once (each holds its VM open).
  ASSERT_TRUE(WaitForLog("region(s)", 32)) << Log();
  for (Subprocess& client : clients) {
    // The result line comes before the hold.
    google::protobuf::Struct result =
        Json(ReadLine(client.stdout_pipe().get()));
    EXPECT_EQ(Number(result, "pages"), 1024);
    EXPECT_EQ(Number(result, "mismatches"), 0);
  }
  (void)server_->Signal(SIGUSR1);
  EXPECT_TRUE(WaitForLog("32 VM(s) being served")) << Log();
  for (Subprocess& client : clients) Release(client);
  EXPECT_TRUE(WaitForLog(" left (", 32)) << Log();
}

TEST_F(ServerTest, RemovedPagesReadBackAsZeros) {
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result = Client(
      {"--regions", "1", "--region_mib", "2", "--dontneed", "64"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "zero_mismatches"), 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog(" left (")) << Log();
  EXPECT_THAT(Log(), HasSubstr("removes 64 (256 KiB)"));
  EXPECT_THAT(Log(), HasSubstr("faults 576 (2.2 MiB, 64 zero)"));
}

// Pages given back while other threads fault: REMOVE events arrive among
// the faults (a copy can then meet EAGAIN: the server reads the events and
// retries at the VM's retry time). Every byte must still be right: the
// file's, or zeros once given back.
TEST_F(ServerTest, RemovesAmongFaults) {
  StartServer({"--record_window=0"});
  int code = -1;
  google::protobuf::Struct result =
      Client({"--regions", "1", "--region_mib", "16", "--threads", "2",
              "--churn_pages", "64", "--churn_rounds", "50"},
             &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(result, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog(" left (")) << Log();
  const std::string log = Log();
  EXPECT_THAT(log, HasSubstr("removes 3200 (12.5 MiB)"));
  EXPECT_THAT(log, HasSubstr(", 3136 zero)"));  // 64 pages x 49 rounds.
  const size_t at = log.find("eagain ");
  ASSERT_NE(at, std::string::npos);
  int64_t retries = -1;
  ASSERT_TRUE(absl::SimpleAtoi(log.substr(at + 7, log.find(',', at) - at - 7),
                               &retries));
  std::cout << "EAGAIN retries in this run: " << retries << "\n";
  EXPECT_GT(retries, 0) << "the churn no longer makes the kernel answer "
                           "EAGAIN: this test tests less than it says";
}

TEST_F(ServerTest, BadHandshakesAreRefusedWhileAGoodVmIsServed) {
  StartServer({"--record_window=0", "--handshake_timeout=1s"});
  // A good VM that stays, its memory half touched.
  Subprocess good =
      HeldClient({"--regions", "1", "--region_mib", "4", "--pages", "512"});
  google::protobuf::Struct first = Json(ReadLine(good.stdout_pipe().get()));
  ASSERT_EQ(Number(first, "pages"), 512) << Log();
  ASSERT_EQ(Number(first, "mismatches"), 0);

  // Each kind, and the reason only it gets.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"bad_json", "handshake is not valid JSON: "},
      {"not_array", "not a JSON array of regions: it starts with '{'"},
      {"no_fd", "no file descriptor came with it"},
      {"two_fds", "2 file descriptors came with it"},
      {"not_uffd", "is not a userfaultfd but /tmp/fcvm-uffd-test"},
      {"outside_file", "offset 1099511627776 + size 8388608 is past the end"},
      {"overlap", "regions overlap"},
      {"absurd_size", "offset 0 + size 4611686018427387904 is past the end"},
      {"float_size", "size must be a plain non-negative integer, not 4096.0"},
      {"silent", "nothing arrived within 1s"},
      {"truncated", "its handshake was still incomplete after 1s"},
      {"late_fd", "a file descriptor came after the first part"},
  };
  for (const auto& [kind, says] : bad) {
    int code = -1;
    google::protobuf::Struct result = Client({"--malformed", kind}, &code);
    EXPECT_EQ(code, 0) << kind;
    EXPECT_TRUE(result.fields().contains("closed")) << kind;
    EXPECT_TRUE(WaitForLog(says)) << kind << "\n" << Log();
  }
  const std::string log = Log();
  for (const auto& [kind, says] : bad) {
    EXPECT_EQ(Count(log, says), 1) << kind << ": " << says;
  }
  EXPECT_EQ(Count(log, "refused the handshake from pid"),
            static_cast<int>(bad.size()));
  // A userfaultfd the peer never initialised: accepted (it is one), then
  // dropped at once, alone.
  EXPECT_TRUE(Client({"--malformed", "uninitialized_uffd"})
                  .fields()
                  .contains("closed"));
  EXPECT_TRUE(WaitForLog("left (its uffd reported an error)")) << Log();
  // One that handshakes and leaves at once: dropped when the server sees it
  // gone (exit or hang-up), or refused if it was gone before it could be
  // watched.
  EXPECT_EQ(Client({"--malformed", "exit_after_handshake"}).fields().size(),
            0u);
  EXPECT_TRUE(WaitUntil([](const std::string& log) {
    return HasLine(log, "vm 3 pid ", " left (") ||
           absl::StrContains(log, "exited before its handshake was read");
  })) << Log();

  // The first VM touches the rest of its memory now: all served, all right.
  google::protobuf::Struct rest = TouchMore(good, 512, 512);
  EXPECT_EQ(Number(rest, "pages"), 512) << Log();
  EXPECT_EQ(Number(rest, "mismatches"), 0);
  Release(good);
  // It was never disturbed: it left only when it exited, with all of its
  // 1024 pages faulted.
  ASSERT_TRUE(WaitUntil([](const std::string& log) {
    return HasLine(log, "vm 1 pid ", " left (");
  })) << Log();
  EXPECT_TRUE(HasLine(Log(), "vm 1 pid ", "faults 1024 (4.0 MiB, 0 zero)"))
      << Log();
  EXPECT_THAT(Log(), Not(HasSubstr("vm 1 pid 0")));
}

// The same with the working set, or without. A working set was once
// copied into every VM: memory that grew with the fleet.
class FlatTest : public ServerTest,
                 public ::testing::WithParamInterface<bool> {};

TEST_P(FlatTest, DescriptorsAndMemoryStayFlatOverThousandsOfVms) {
  const bool working_set = GetParam();
  StartServer({working_set ? "--record_window=60s" : "--record_window=0"});
  int vms = 0;
  if (working_set) {
    // The first VM's faults (every page of the file) become the working
    // set when it leaves.
    int code = -1;
    Client({"--regions", "1", "--region_mib", "32", "--threads", "2"}, &code);
    ASSERT_EQ(code, 0);
    ++vms;
    ASSERT_TRUE(WaitForLog("working set: 8192 pages written")) << Log();
  }
  auto cycle = [&] {
    int code = -1;
    Client({"--regions", "1", "--region_mib", "1", "--pages", "4", "--threads",
            "1"},
           &code);
    ++vms;
    return code;
  };
  for (int i = 0; i < 100; ++i) ASSERT_EQ(cycle(), 0);  // Warm up.
  ASSERT_TRUE(WaitForLog(" left (", vms)) << Log();
  const int fds = OpenFds();
  const int64_t rss = RssKib();
  constexpr int kCycles = 2000;
  for (int i = 0; i < kCycles; ++i) ASSERT_EQ(cycle(), 0) << "cycle " << i;
  ASSERT_TRUE(WaitForLog(" left (", vms)) << Log();
  std::cout << "after " << kCycles << " VMs: fds " << fds << " -> " << OpenFds()
            << ", RSS " << rss << " -> " << RssKib() << " KiB\n";
  EXPECT_EQ(OpenFds(), fds);
  EXPECT_LT(RssKib() - rss, 2048);
  if (working_set) {
    EXPECT_EQ(Count(Log(), "prefetching 8192 pages in"), kCycles + 100);
  }

  // Many at once: what each VM costs the server while it is there (with
  // a set of 8192 pages, a copy each was 64 KiB).
  std::vector<Subprocess> held;
  for (int i = 0; i < 100; ++i) {
    held.push_back(HeldClient({"--regions", "1", "--region_mib", "1", "--pages",
                               "4", "--threads", "1"}));
  }
  for (Subprocess& client : held) {
    EXPECT_EQ(Number(Json(ReadLine(client.stdout_pipe().get())), "mismatches"),
              0);
  }
  const int64_t at_once = RssKib();
  std::cout << "100 VMs at once: RSS " << rss << " -> " << at_once << " KiB\n";
  EXPECT_LT(at_once - rss, 2048);
  for (Subprocess& client : held) Release(client);
  EXPECT_TRUE(WaitForLog(" left (", vms + 100)) << Log();
}

INSTANTIATE_TEST_SUITE_P(WorkingSet, FlatTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WithAWorkingSet"
                                             : "WithoutAWorkingSet";
                         });

// A server in a pid namespace of its own (as a jailer's would be) sees
// every peer's pid as 0; the clients are each in a new pid namespace too,
// as jailed Firecrackers are. Every VM must still leave when its process
// exits (SO_PEERPIDFD, or its hang-up), or the server keeps its uffd.
TEST_F(ServerTest, PeersInAnotherPidNamespaceLeaveWhenTheyExit) {
  StartServer({"--record_window=0"}, {}, /*in_pid_namespace=*/true);
  auto cycle = [&](int i) {
    int code = -1;
    // Both kinds: 1.10 closes its socket at once (only the pidfd tells),
    // 1.12 keeps it until it exits.
    google::protobuf::Struct result =
        Client({"--in_new_pid_namespace", "--variant", i % 2 ? "1.10" : "1.12",
                "--regions", "1", "--region_mib", "1", "--pages", "4",
                "--threads", "1"},
               &code);
    EXPECT_EQ(Number(result, "mismatches"), 0);
    return code;
  };
  for (int i = 0; i < 20; ++i) ASSERT_EQ(cycle(i), 0);
  ASSERT_TRUE(WaitForLog(" left (", 20)) << Log();
  // The case of the old leak: the server saw no pid.
  EXPECT_THAT(Log(), HasSubstr("vm 1 pid 0: 1 region(s)"));
  const int fds = OpenFds();
  ASSERT_GT(fds, 0);
  constexpr int kCycles = 200;
  for (int i = 0; i < kCycles; ++i) ASSERT_EQ(cycle(i), 0) << "cycle " << i;
  ASSERT_TRUE(WaitForLog(" left (", 20 + kCycles)) << Log();
  EXPECT_EQ(OpenFds(), fds);
  EXPECT_EQ(Count(Log(), "refused"), 0);
}

TEST_F(ServerTest, AHangUpEndsAVmOnlyFromAFirecrackerThatKeepsItsSocket) {
  StartServer({"--record_window=0"});
  // 1.12+ keeps the socket until it exits: its hang-up means it is gone,
  // even while its process is still there.
  Subprocess current =
      HeldClient({"--variant", "1.12", "--regions", "1", "--region_mib", "1",
                  "--pages", "4", "--close_socket_after_handshake"});
  ASSERT_TRUE(WaitForLog("vm 1 pid ")) << Log();
  EXPECT_TRUE(WaitForLog("left (it closed its end of the handshake socket)"))
      << Log();
  // 1.4 to 1.11 close it right after the handshake: still served.
  Subprocess old =
      HeldClient({"--variant", "1.10", "--regions", "1", "--region_mib", "1",
                  "--pages", "4", "--close_socket_after_handshake"});
  EXPECT_EQ(Number(Json(ReadLine(old.stdout_pipe().get())), "mismatches"), 0);
  google::protobuf::Struct more = TouchMore(old, 4, 252);
  EXPECT_EQ(Number(more, "pages"), 252) << Log();
  EXPECT_EQ(Number(more, "mismatches"), 0);
  Release(old);
  EXPECT_TRUE(WaitForLog("left (its process exited)")) << Log();
  EXPECT_EQ(Count(Log(), " left ("), 2);
  (void)current.Kill();
}

TEST_F(ServerTest, ASecondServerNeitherTakesOverNorRemovesTheSocket) {
  StartServer({"--record_window=0"});
  struct stat first;
  ASSERT_EQ(stat(socket_.c_str(), &first), 0);
  SubprocessOptions second;
  second.argv = {g_server, memory_, "--socket", socket_};
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(std::move(second), kPatience);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              HasSubstr(absl::StrCat("another server listens on ", socket_)));
  // The first still has its socket and serves.
  struct stat now;
  ASSERT_EQ(stat(socket_.c_str(), &now), 0);
  EXPECT_EQ(now.st_ino, first.st_ino);
  int code = -1;
  EXPECT_EQ(Number(Client({"--regions", "1", "--region_mib", "1"}, &code),
                   "mismatches"),
            0);
  EXPECT_EQ(code, 0);

  // Someone removes the path and a new server takes it: when the first
  // stops, it leaves the new one's socket alone.
  ASSERT_EQ(unlink(socket_.c_str()), 0);
  SubprocessOptions third;
  third.argv = {g_server, memory_, "--socket", socket_, "--record_window=0"};
  third.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> newer = Subprocess::Start(std::move(third));
  ASSERT_TRUE(newer.ok()) << newer.status();
  ASSERT_THAT(ReadLine(newer->stderr_pipe().get()),
              HasSubstr("fcvm-uffd: serving "));
  struct stat newer_socket;
  ASSERT_EQ(stat(socket_.c_str(), &newer_socket), 0);
  StopServer();
  ASSERT_EQ(stat(socket_.c_str(), &now), 0) << "the first server removed it";
  EXPECT_EQ(now.st_ino, newer_socket.st_ino);
  EXPECT_EQ(Number(Client({"--regions", "1", "--region_mib", "1"}, &code),
                   "mismatches"),
            0);
  EXPECT_EQ(code, 0);
  ASSERT_TRUE(newer->Signal(SIGTERM).ok());
  ASSERT_TRUE(newer->Wait(kPatience).ok());
  EXPECT_NE(stat(socket_.c_str(), &now), 0) << "its own socket, removed";
}

TEST_F(ServerTest, OutOfDescriptorsTheServerBacksOffInsteadOfSpinning) {
  StartServer({"--record_window=0", "--handshake_timeout=60s"});
  // Leave the server room for a few more descriptors only.
  const pid_t pid = ServerPid();
  rlimit original;
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &original), 0);
  int highest = 0;
  DIR* fds = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  ASSERT_NE(fds, nullptr);
  while (dirent* e = readdir(fds)) highest = std::max(highest, atoi(e->d_name));
  closedir(fds);
  rlimit low = {static_cast<rlim_t>(highest + 3), original.rlim_max};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);
  // Connections that say nothing: each pending one holds descriptors.
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<UniqueFd> fd = ConnectUnixStream(socket_, "the server");
    ASSERT_TRUE(fd.ok()) << fd.status();
    silent.push_back(std::move(*fd));
  }
  // (A server that does not say so is measured all the same.)
  EXPECT_TRUE(WaitForLog("Too many open files: not accepting for 100ms"))
      << Log();
  // Nothing to wait for: the point is that nothing happens. A server that
  // spins uses the whole second.
  const absl::Duration before = CpuTime();
  absl::SleepFor(absl::Seconds(1));
  const absl::Duration used = CpuTime() - before;
  std::cout << "CPU time out of descriptors for 1 s: " << used << "\n";
  EXPECT_LT(used, absl::Milliseconds(300));
  EXPECT_EQ(Count(Log(), "Too many open files"), 1) << "once per episode";
  // Descriptors back: the connections waiting in the backlog are taken,
  // and a VM is served.
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &original, nullptr), 0);
  silent.clear();
  ASSERT_TRUE(WaitForLog("accepting connections again")) << Log();
  int code = -1;
  EXPECT_EQ(Number(Client({"--regions", "1", "--region_mib", "1"}, &code),
                   "mismatches"),
            0);
  EXPECT_EQ(code, 0);
}

TEST_F(ServerTest, PendingHandshakesAreCapped) {
  StartServer({"--record_window=0", "--handshake_timeout=60s",
               "--max_pending_handshakes=2"});
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<UniqueFd> fd = ConnectUnixStream(socket_, "the server");
    ASSERT_TRUE(fd.ok()) << fd.status();
    silent.push_back(std::move(*fd));
  }
  // The third and fourth are closed at once; the first two wait.
  for (int i = 2; i < 4; ++i) {
    pollfd p = {silent[i].get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 30000), 1) << i;
    char byte;
    EXPECT_EQ(read(silent[i].get(), &byte, 1), 0) << i;
  }
  for (int i = 0; i < 2; ++i) {
    pollfd p = {silent[i].get(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << i;
  }
  ASSERT_TRUE(WaitForLog("2 handshakes are pending")) << Log();
  EXPECT_EQ(Count(Log(), "handshakes are pending"), 1) << "one line";
  // One gives up: room again.
  silent[0].reset();
  ASSERT_TRUE(WaitForLog("accepting handshakes again; refused 2 connection"))
      << Log();
  int code = -1;
  EXPECT_EQ(Number(Client({"--regions", "1", "--region_mib", "1"}, &code),
                   "mismatches"),
            0);
  EXPECT_EQ(code, 0);
}

TEST_F(ServerTest, ATruncatedMemoryFileIsNotServed) {
  StartServer({"--record_window=0"});
  Subprocess held =
      HeldClient({"--regions", "1", "--region_mib", "4", "--pages", "16"});
  ASSERT_EQ(Number(Json(ReadLine(held.stdout_pipe().get())), "mismatches"), 0);
  ASSERT_EQ(truncate(memory_.c_str(), 0), 0);
  // Its next faults cannot be served from the file (EFAULT), or the check
  // found the change first: either way the server says what changed and
  // serves nothing more, rather than zeros or "address space is gone".
  const std::string says = absl::StrCat(
      "the memory file ", memory_, " changed while served (size 33554432 -> 0");
  const std::string command = "touch 16 16\n";
  ASSERT_EQ(write(held.stdin_pipe().get(), command.data(), command.size()),
            static_cast<ssize_t>(command.size()));
  ASSERT_TRUE(WaitForLog("no longer serving faults")) << Log();
  EXPECT_THAT(Log(), HasSubstr(says));
  EXPECT_THAT(Log(), Not(HasSubstr("address space is gone")));
  // The VM is still counted (it waits), and new VMs are refused, saying why.
  (void)server_->Signal(SIGUSR1);
  EXPECT_TRUE(WaitForLog("1 VM(s) being served")) << Log();
  int code = -1;
  EXPECT_TRUE(
      Client({"--regions", "1", "--region_mib", "1", "--expect_refusal"}, &code)
          .fields()
          .contains("refused"));
  EXPECT_TRUE(WaitForLog("refused the handshake from pid ")) << Log();
  EXPECT_THAT(Log(), HasSubstr(": not serving new VMs"));
  (void)held.Kill();
}

TEST_F(ServerTest, AMemoryFileRewrittenInPlaceIsNotServed) {
  StartServer({"--record_window=0", "--file_check_interval=100ms"});
  Subprocess held =
      HeldClient({"--regions", "1", "--region_mib", "4", "--pages", "16"});
  ASSERT_EQ(Number(Json(ReadLine(held.stdout_pipe().get())), "mismatches"), 0);
  {
    // Same size, other bytes: every clone would be served them.
    UniqueFd fd(open(memory_.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    const std::string other(4096, 'x');
    ASSERT_EQ(pwrite(fd.get(), other.data(), other.size(), 64 * 4096),
              static_cast<ssize_t>(other.size()));
  }
  ASSERT_TRUE(WaitForLog(absl::StrCat("the memory file ", memory_,
                                      " changed while served (mtime ")))
      << Log();
  EXPECT_TRUE(WaitForLog("no longer serving faults")) << Log();
  int code = -1;
  EXPECT_TRUE(
      Client({"--regions", "1", "--region_mib", "1", "--expect_refusal"}, &code)
          .fields()
          .contains("refused"));
  EXPECT_TRUE(WaitForLog(": not serving new VMs")) << Log();
  (void)held.Kill();
}

TEST_F(ServerTest, AMemoryFileReplacedKeepsItsVmsAndRefusesNewOnes) {
  StartServer({"--record_window=0"});
  Subprocess held =
      HeldClient({"--regions", "1", "--region_mib", "4", "--pages", "16"});
  ASSERT_EQ(Number(Json(ReadLine(held.stdout_pipe().get())), "mismatches"), 0);
  // A new snapshot renamed over the old one: the mapped file is intact.
  ASSERT_TRUE(
      WriteFileAtomically(memory_, std::string(kMemoryBytes, 'n'), 0644).ok());
  int code = -1;
  EXPECT_TRUE(
      Client({"--regions", "1", "--region_mib", "1", "--expect_refusal"}, &code)
          .fields()
          .contains("refused"));
  EXPECT_TRUE(WaitForLog(absl::StrCat("the memory file ", memory_,
                                      " was replaced while served (the path "
                                      "names another file")))
      << Log();
  EXPECT_TRUE(WaitForLog(": not serving new VMs")) << Log();
  // The VM keeps the bytes it was restored from (the client compares with
  // what the file held when it started).
  google::protobuf::Struct more = TouchMore(held, 16, 512);
  EXPECT_EQ(Number(more, "pages"), 512) << Log();
  EXPECT_EQ(Number(more, "mismatches"), 0);
  Release(held);
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
  absl::StatusOr<ExitStatus> exit = server_->Wait(kPatience);
  ASSERT_TRUE(exit.ok()) << "still serving with no VM left\n" << Log();
  EXPECT_TRUE(exit->success());
  EXPECT_TRUE(WaitForLog("the last VM has gone: exiting")) << Log();
}

// The on-demand faults of the VM that left last, from its log line.
int64_t FaultsOfLastVm(const std::string& log) {
  const size_t at = log.rfind(" left (");
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
  ASSERT_TRUE(WaitForLog(" left (")) << Log();
  EXPECT_EQ(FaultsOfLastVm(Log()), 342);

  // The next VM on the same server gets the set in batches first.
  google::protobuf::Struct second = Client(pattern, &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(Number(second, "mismatches"), 0);
  ASSERT_TRUE(WaitForLog(" left (", 2)) << Log();
  EXPECT_THAT(Log(), HasSubstr("prefetching 342 pages in"));
  EXPECT_THAT(Log(), HasSubstr("prefetched 342 pages (1.3 MiB)"));
  EXPECT_LE(FaultsOfLastVm(Log()), 34) << "more than 10% raced the prefetch";
  EXPECT_THAT(Log(), HasSubstr(", outside 0,")) << "the set missed pages";

  // A server started later finds the set beside the memory file.
  StartServer({"--record_window=60s"});
  ASSERT_TRUE(WaitForLog("prefetching a working set of 342 pages")) << Log();
  google::protobuf::Struct third = Client(pattern, &code);
  ASSERT_EQ(code, 0);
  ASSERT_TRUE(WaitForLog(" left (", 3)) << Log();
  EXPECT_LE(FaultsOfLastVm(Log()), 34);
  std::cout << "touch p50: first VM " << Number(first, "fault_p50_ns")
            << " ns, prefetched VMs " << Number(second, "fault_p50_ns")
            << " and " << Number(third, "fault_p50_ns") << " ns\n";
}

TEST_F(ServerTest, AQuietRecordingVmDoesNotHoldUpPrefetch) {
  // The recorded VM touches 64 pages and then nothing: its window still
  // ends on time, and the next VM is prefetched while it is there.
  StartServer({"--record_window=1s"});
  Subprocess quiet =
      HeldClient({"--regions", "1", "--region_mib", "1", "--pages", "64"});
  ASSERT_EQ(Number(Json(ReadLine(quiet.stdout_pipe().get())), "mismatches"), 0);
  ASSERT_TRUE(WaitForLog("working set: 64 pages written, recorded from vm 1"))
      << Log();
  EXPECT_EQ(Count(Log(), " left ("), 0);
  int code = -1;
  google::protobuf::Struct next =
      Client({"--regions", "1", "--region_mib", "1", "--pages", "64"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Number(next, "mismatches"), 0);
  EXPECT_TRUE(WaitForLog("prefetching 64 pages in 1 runs")) << Log();
  Release(quiet);
}

}  // namespace
}  // namespace fcvm::uffd

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 5) {
    std::cerr << "usage: server_test <uffd/server> <uffd_client> <fcvm> "
                 "<in_new_pid_namespace>\n";
    return 2;
  }
  fcvm::uffd::g_server = argv[1];
  fcvm::uffd::g_client = argv[2];
  fcvm::uffd::g_fcvm = argv[3];
  fcvm::uffd::g_pid_namespace = argv[4];
  return RUN_ALL_TESTS();
}
