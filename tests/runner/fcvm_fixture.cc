#include "tests/runner/fcvm_fixture.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/http_client.h"
#include "agent/netconfig.h"
#include "base/free_port.h"
#include "base/subprocess.h"
#include "google/protobuf/util/json_util.h"
#include "runner/state/process.h"
#include "runner/vmm/kvm.h"

namespace fcvm::testing {

Programs g_programs;

namespace {

std::string g_targets = "all";

}  // namespace

std::string Target::Name() const {
  return absl::StrCat(backend, "_", arch, accel == "kvm" ? "_kvm" : "");
}

void PrintTo(const Target& target, std::ostream* os) { *os << target.Name(); }

std::vector<Target> Targets() {
  std::vector<Target> targets;
  if (g_targets == "all" || g_targets == "qemu") {
    targets.push_back({"qemu", "x86_64"});
    targets.push_back({"qemu", "aarch64"});
  }
  if (g_targets == "all" || g_targets == "standin") {
    targets.push_back({"firecracker", runner::HostArch()});
  }
  if (g_targets == "all" || g_targets == "kvm") {
    targets.push_back({"qemu", runner::HostArch(), "kvm"});
  }
  return targets;
}

uint16_t FreePort() { return FreeLoopbackPort().value_or(0); }

std::vector<Target> HostQemuTargets() {
  std::vector<Target> host;
  for (const Target& t : Targets()) {
    if (t.backend == "qemu" && t.arch == runner::HostArch()) host.push_back(t);
  }
  return host;
}

std::string TargetName(const ::testing::TestParamInfo<Target>& info) {
  return info.param.Name();
}

std::string HostVm() {
  return runner::HostArch() == "aarch64" ? g_programs.vm_aarch64
                                         : g_programs.vm_x86_64;
}

void FcvmTest::SetUp() {
  // Short: the VM's sockets live under it (sun_path is 108 bytes).
  char dir[] = "/tmp/fcvm-run-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  state_ = dir;
  fcvm_command_ = {g_programs.fcvm};
  setenv("FCVM_STATE_DIR", state_.c_str(), 1);
  setenv("FCVM_FIRECRACKER", g_programs.standin.c_str(), 1);
  setenv("FCVM_STANDIN_SPEC", g_programs.spec.c_str(), 1);
  if (const Target* target = GetParamOrNull();
      target && target->accel == "kvm") {
    // The runner's own verdict (direct probe, then QEMU booting the
    // kernel under KVM), asked once.
    static const std::string* missing = new std::string([this] {
      Result preflight =
          Fcvm({"--kernel", g_programs.kernel, "preflight"}, absl::Minutes(2));
      for (absl::string_view line : absl::StrSplit(preflight.out, '\n')) {
        if (absl::StrContains(line, "KVM under QEMU") ||
            (absl::StrContains(line, "KVM (direct probe)") &&
             !absl::StartsWith(line, "ok"))) {
          if (!absl::StartsWith(line, "ok")) return std::string(line);
          if (absl::StrContains(line, "KVM under QEMU")) return std::string();
        }
      }
      return std::string("fcvm preflight said nothing of KVM under QEMU");
    }());
    if (!missing->empty())
      GTEST_SKIP() << "needs KVM that runs a guest: " << *missing;
  }
}

const Target* FcvmTest::GetParamOrNull() const {
  // TEST_F cases on this fixture have no parameter.
  return ::testing::UnitTest::GetInstance()->current_test_info()->value_param()
             ? &GetParam()
             : nullptr;
}

void FcvmTest::TearDown() {
  // Whatever a failed test left running goes, then the state.
  for (const auto& [pid, ticks] : vmms_) {
    (void)runner::KillRecorded(pid, ticks, absl::Seconds(10));
  }
  if (absl::StatusOr<std::vector<std::string>> names = Names(); names.ok()) {
    for (const std::string& name : *names) (void)Fcvm({"rm", "-f", name});
  }
  std::error_code ignored;
  std::filesystem::remove_all(state_, ignored);
}

std::vector<std::string> FcvmTest::Run(std::vector<std::string> args) const {
  const Target& target = GetParam();
  std::vector<std::string> argv = {
      target.arch == "aarch64" ? g_programs.vm_aarch64 : g_programs.vm_x86_64,
      "--backend", target.backend};
  if (target.backend == "qemu") {
    argv.insert(argv.end(), {"--accel", target.accel});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

FcvmTest::Result FcvmTest::Exec(std::vector<std::string> argv,
                                absl::Duration timeout) {
  return ExecWithInput(std::move(argv), std::nullopt, timeout);
}

FcvmTest::Result FcvmTest::ExecWithInput(std::vector<std::string> argv,
                                         std::optional<std::string> input,
                                         absl::Duration timeout) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  if (input.has_value()) options.stdin_mode = StdioMode::kPipe;
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  Result result;
  absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(options));
  if (!process.ok()) {
    result.err = process.status().ToString();
    return result;
  }
  absl::StatusOr<Subprocess::Output> output =
      process->Communicate(input.value_or(""), timeout);
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
  args.insert(args.begin(), fcvm_command_.begin(), fcvm_command_.end());
  return Exec(std::move(args), timeout);
}

std::string FcvmTest::LogsOnceTheyHold(const std::string& name,
                                       const std::string& want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string logs = Fcvm({"logs", name}).out;
  while (!absl::StrContains(logs, want) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(250));
    logs = Fcvm({"logs", name}).out;
  }
  return logs;
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
  if (it->second.has_bool_value())
    return it->second.bool_value() ? "true" : "false";
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

[[nodiscard]] absl::StatusOr<std::vector<std::string>> FcvmTest::Names() {
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

[[nodiscard]] absl::StatusOr<Subprocess> FcvmTest::StartUntil(
    std::vector<std::string> argv, const std::string& name,
    std::string* progress, const std::string& marker) {
  SubprocessOptions options;
  options.argv = std::move(argv);
  options.stdout_mode = StdioMode::kNull;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess> runner = Subprocess::Start(std::move(options));
  if (!runner.ok()) return runner.status();
  const absl::Time deadline = absl::Now() + absl::Minutes(8);
  progress->clear();
  // Until the marker's whole line has arrived.
  for (size_t at; (at = progress->find(marker)) == std::string::npos ||
                  progress->find('\n', at) == std::string::npos;) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat(name, ": no '", marker, "' in 8 minutes:\n", *progress));
    }
    pollfd pfd = {runner->stderr_pipe().get(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(pfd.fd, buffer, sizeof(buffer));
    if (n <= 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          name, ": the runner ended before '", marker, "':\n", *progress));
    }
    progress->append(buffer, n);
  }
  Remember(Inspect(name));
  return runner;
}

[[nodiscard]] absl::StatusOr<std::string> FcvmTest::Get(
    const std::string& ip, uint16_t port, absl::Duration timeout) {
  agent::HttpRequest request;
  absl::StatusOr<agent::HttpResponse> response =
      agent::HttpCall({ip, port}, request, timeout);
  if (!response.ok()) return response.status();
  return response->body;
}

int FcvmTestMain(int argc, char** argv) {
  // Before InitGoogleTest: it registers the parameterized tests, whose
  // targets depend on --targets.
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], "--targets=")) g_targets = argv[i] + 10;
  }
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--targets=")) paths.push_back(arg);
  }
  if (paths.size() < 6) {
    std::cerr << "usage: " << argv[0]
              << " [--targets=qemu|standin|all] <runner/vm_x86_64> "
                 "<runner/vm_aarch64> <runner/fcvm> <standin firecracker> "
                 "<firecracker spec> <guest kernel> [test's own files...]\n";
    return 2;
  }
  char cwd[4096];
  const std::string here = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
  for (std::string& path : paths) path = here + "/" + path;
  g_programs = {paths[0], paths[1], paths[2], paths[3], paths[4], paths[5]};
  g_programs.extra.assign(paths.begin() + 6, paths.end());
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
