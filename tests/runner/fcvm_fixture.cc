#include "tests/runner/fcvm_fixture.h"

#include <ftw.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/http_client.h"
#include "agent/netconfig.h"
#include "base/subprocess.h"
#include "google/protobuf/util/json_util.h"
#include "runner/state/process.h"

namespace fcvm::testing {

std::string g_vm, g_fcvm;

namespace {

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

}  // namespace

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

void FcvmTest::SetUp() {
  // Short: QMP's Unix socket lives under it (sun_path is 108 bytes).
  char dir[] = "/tmp/fcvm-run-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  state_ = dir;
  setenv("FCVM_STATE_DIR", state_.c_str(), 1);
}

void FcvmTest::TearDown() {
  // Whatever a failed test left running goes, then the state.
  for (const auto& [pid, ticks] : vmms_) {
    if (runner::SameProcessAlive(pid, ticks)) kill(pid, SIGKILL);
  }
  if (absl::StatusOr<std::vector<std::string>> names = Names(); names.ok()) {
    for (const std::string& name : *names) (void)Fcvm({"rm", "-f", name});
  }
  nftw(state_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

FcvmTest::Result FcvmTest::Exec(std::vector<std::string> argv,
                                absl::Duration timeout) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  Result result;
  absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(options));
  if (!process.ok()) {
    result.err = process.status().ToString();
    return result;
  }
  absl::StatusOr<Subprocess::Output> output = process->Communicate("", timeout);
  if (!output.ok()) {
    result.err = output.status().ToString();
    return result;
  }
  result.code =
      output->exit.signaled ? 128 + output->exit.signal : output->exit.code;
  result.out = output->stdout_data;
  result.err = output->stderr_data;
  return result;
}

FcvmTest::Result FcvmTest::Fcvm(std::vector<std::string> args,
                                absl::Duration timeout) {
  args.insert(args.begin(), g_fcvm);
  return Exec(std::move(args), timeout);
}

google::protobuf::Struct FcvmTest::Inspect(const std::string& name) {
  Result r = Fcvm({"inspect", name});
  google::protobuf::ListValue list;
  google::protobuf::Struct state;
  if (r.code == 0 &&
      google::protobuf::util::JsonStringToMessage(r.out, &list).ok() &&
      list.values_size() == 1) {
    state = list.values(0).struct_value();
  }
  return state;
}

std::string FcvmTest::Field(const google::protobuf::Struct& s,
                            const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return "";
  return it->second.has_string_value()
             ? it->second.string_value()
             : absl::StrCat(static_cast<int64_t>(it->second.number_value()));
}

void FcvmTest::Remember(const google::protobuf::Struct& s) {
  int64_t pid = 0;
  uint64_t ticks = 0;
  (void)absl::SimpleAtoi(Field(s, "vmm_pid"), &pid);
  (void)absl::SimpleAtoi(Field(s, "vmm_start_ticks"), &ticks);
  if (pid > 0) vmms_.push_back({static_cast<pid_t>(pid), ticks});
}

absl::StatusOr<std::vector<std::string>> FcvmTest::Names() {
  Result ls = Fcvm({"ls", "--json"});
  google::protobuf::ListValue all;
  if (ls.code != 0 ||
      !google::protobuf::util::JsonStringToMessage(ls.out, &all).ok()) {
    return absl::InternalError(ls.err);
  }
  std::vector<std::string> names;
  for (const auto& v : all.values()) {
    names.push_back(v.struct_value().fields().at("name").string_value());
  }
  return names;
}

absl::StatusOr<Subprocess> FcvmTest::StartUntilRunning(
    std::vector<std::string> argv, const std::string& name,
    google::protobuf::Struct* state) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  options.stdout_mode = StdioMode::kNull;
  options.stderr_mode = StdioMode::kNull;
  absl::StatusOr<Subprocess> runner = Subprocess::Start(std::move(options));
  if (!runner.ok()) return runner.status();
  const absl::Time deadline = absl::Now() + absl::Minutes(8);
  *state = google::protobuf::Struct();
  while (absl::Now() < deadline && Field(*state, "phase") != "RUNNING") {
    absl::SleepFor(absl::Milliseconds(200));
    *state = Inspect(name);
  }
  if (Field(*state, "phase") != "RUNNING") {
    return absl::DeadlineExceededError(
        absl::StrCat(name, " is not RUNNING but '", Field(*state, "phase"),
                     "': ", Field(*state, "error")));
  }
  Remember(*state);
  return runner;
}

absl::StatusOr<std::string> FcvmTest::Get(const std::string& ip,
                                          uint16_t port) {
  agent::HttpRequest request;
  absl::StatusOr<agent::HttpResponse> response =
      agent::HttpCall({ip, port}, request, absl::Seconds(10));
  if (!response.ok()) return response.status();
  return response->body;
}

int FcvmTestMain(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <runner/vm> <runner/fcvm>\n";
    return 2;
  }
  char cwd[4096];
  const std::string here = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
  g_vm = here + "/" + argv[1];
  g_fcvm = here + "/" + argv[2];
  return RUN_ALL_TESTS();
}

int FcvmTestMainInOwnNetns(int argc, char** argv) {
  if (unshare(CLONE_NEWNET) != 0) {
    std::cerr << argv[0] << ": needs root for a network namespace of its own\n";
    return 1;
  }
  if (absl::Status up = agent::SetLinkUp("lo"); !up.ok()) {
    std::cerr << up << "\n";
    return 1;
  }
  return FcvmTestMain(argc, argv);
}

}  // namespace fcvm::testing
