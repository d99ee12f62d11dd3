#include "runner/template/build.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/free_port.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "base/unique_fd.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "runner/cache/key.h"
#include "runner/cache/startup_cache.h"
#include "runner/snapshot/create.h"
#include "runner/snapshot/machine.h"
#include "runner/snapshot/remove.h"
#include "runner/snapshot/snapshot_store.h"
#include "runner/vm/launch.h"
#include "runner/vm/remove.h"
#include "runner/vm/run.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {
namespace {

void Say(const std::string& name, const std::string& what) {
  std::fprintf(stderr, "fcvm: template %s: %s\n", name.c_str(), what.c_str());
}

std::string Relative(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  return absl::StrCat(dir, "/", path);
}

// The run the template describes, as `fcvm run -d --no-cache` flags.
[[nodiscard]] absl::StatusOr<RunFlags> FlagsOf(const Template& t) {
  RunFlags flags;
  // "tb-<tag>": at most 39 characters, a valid VM name.
  flags.name = absl::StrCat("tb-", t.name());
  flags.image = t.image();
  if (!t.entrypoint().empty()) flags.entrypoint = {t.entrypoint()};
  flags.args.assign(t.args().begin(), t.args().end());
  flags.env.insert(t.env().begin(), t.env().end());
  flags.user = t.user();
  flags.workdir = t.workdir();
  flags.cpus = t.cpus() == 0 ? 1 : t.cpus();
  ASSIGN_OR_RETURN(flags.memory_mib,
                   ParseMemoryMib(t.memory().empty() ? "512m" : t.memory()));
  for (const std::string& publish : t.publish()) {
    ASSIGN_OR_RETURN(PublishedPort port, ParsePublish(publish));
    // The guest's port on a free one of the host's.
    ASSIGN_OR_RETURN(uint16_t free,
                     FreeLoopbackPort(0, port.protocol() == "udp"));
    port.set_host_port(free);
    flags.ports.push_back(port);
  }
  if (!t.network().empty()) flags.network = t.network();
  flags.detach = true;
  flags.no_cache = true;
  return flags;
}

[[nodiscard]] absl::Status TcpConnect(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket");
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address),
              sizeof(address)) != 0) {
    return ErrnoStatus(absl::StrCat("connecting to 127.0.0.1:", port));
  }
  return absl::OkStatus();
}

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

// GET http://127.0.0.1:<port><path>: OK on 2xx and 3xx.
[[nodiscard]] absl::Status HttpGet(uint16_t port, const std::string& path) {
  const std::string url =
      absl::StrCat("http://127.0.0.1:", port,
                   path.empty() || path[0] != '/' ? "/" : "", path);
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode done = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  if (done != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", curl_easy_strerror(done)));
  }
  if (code < 200 || code >= 400) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": HTTP ", code));
  }
  return absl::OkStatus();
}

// `fcvm exec [--vm] VM -- argv`, its failure naming the command and the
// tail of what it said.
[[nodiscard]] absl::Status Exec(const TemplateBuildOptions& options,
                                const std::string& vm, bool in_vm,
                                const std::vector<std::string>& command,
                                absl::Duration timeout) {
  SubprocessOptions exec;
  exec.argv = options.fcvm_argv;
  exec.argv.push_back("exec");
  if (in_vm) exec.argv.push_back("--vm");
  exec.argv.insert(exec.argv.end(), {vm, "--"});
  exec.argv.insert(exec.argv.end(), command.begin(), command.end());
  exec.stdout_mode = StdioMode::kPipe;
  exec.stderr_mode = StdioMode::kPipe;
  ASSIGN_OR_RETURN(Subprocess process, Subprocess::Start(std::move(exec)));
  ASSIGN_OR_RETURN(Subprocess::Output output, process.Communicate("", timeout));
  if (output.exit.success()) return absl::OkStatus();
  std::string said =
      output.stderr_data.empty() ? output.stdout_data : output.stderr_data;
  if (said.size() > 400) said = said.substr(said.size() - 400);
  while (!said.empty() && said.back() == '\n') said.pop_back();
  return absl::FailedPreconditionError(
      absl::StrCat("'", absl::StrJoin(command, " "), "' ",
                   output.exit.ToString(), said.empty() ? "" : ": ", said));
}

}  // namespace

[[nodiscard]] absl::StatusOr<Template> ReadTemplate(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Template t;
  google::protobuf::TextFormat::Parser parser;
  struct Collector : google::protobuf::io::ErrorCollector {
    std::string first;
    void AddError(int line, int column, const std::string& message) override {
      if (first.empty()) {
        first = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
      }
    }
  } errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("template ", path, ": ", errors.first));
  }
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("template ", path, ": ", why));
  };
  if (absl::Status tag = ValidateTag(t.name()); !tag.ok()) {
    return bad(absl::StrCat("name: ", tag.message()));
  }
  if (t.image().empty()) return bad("no image");
  const TemplateReadiness& ready = t.ready();
  if ((ready.tcp_port() != 0) == (ready.exec_size() > 0)) {
    return bad(
        "ready: exactly one of tcp_port (with or without http_path) "
        "and exec");
  }
  if (!ready.http_path().empty() && ready.tcp_port() == 0) {
    return bad("ready: http_path needs tcp_port");
  }
  for (int i = 0; i < t.steps_size(); ++i) {
    if (t.steps(i).exec_size() == 0) {
      return bad(absl::StrCat("steps ", i + 1, ": no exec command"));
    }
  }
  return t;
}

[[nodiscard]] absl::StatusOr<TemplateBuilt> BuildTemplate(
    StateStore& store, const Template& t, const TemplateBuildOptions& options) {
  const absl::Time start = absl::Now();
  auto seconds = [&] { return absl::ToDoubleSeconds(absl::Now() - start); };
  const std::string& tag = t.name();
  ASSIGN_OR_RETURN(RunFlags flags, FlagsOf(t));
  FactsRequest request = options.facts;
  if (!t.kernel().empty()) {
    request.assets.kernel = Relative(options.template_dir, t.kernel());
  }
  if (!t.rootfs().empty()) {
    request.assets.rootfs = Relative(options.template_dir, t.rootfs());
  }
  ASSIGN_OR_RETURN(HostFacts facts, GatherHostFacts(flags, request));
  ASSIGN_OR_RETURN(LaunchSeeds seeds, DrawSeeds());
  ASSIGN_OR_RETURN(Launch launch, PlanLaunch(flags, facts, seeds));

  // The content key: what the workload boots from, and the template.
  StartupCache cache(store.root());
  ASSIGN_OR_RETURN(std::string version, VmmVersion(launch.state.vmm_binary()));
  absl::StatusOr<CacheKey> inputs = ComputeCacheKey(
      launch.state, version,
      [&cache](const std::string& role, const std::string& path) {
        return cache.Digest(role, path);
      });
  if (!inputs.ok()) {
    return Annotate(inputs.status(), absl::StrCat("template ", tag));
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(t, &text);
  const std::string key =
      Sha256Hex(absl::StrCat(inputs->key(), "\n", text)).substr(0, 32);
  TemplateBuilt built;
  built.set_tag(tag);
  built.set_key(key);

  SnapshotStore snapshots(store.root());
  if (absl::StatusOr<SnapshotManifest> existing = snapshots.Read(tag);
      existing.ok()) {
    if (existing->template_key() == key) {
      built.set_seconds(seconds());
      return built;  // Unchanged: not built again.
    }
    if (existing->template_key().empty()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "template ", tag, ": snapshot '", tag,
          "' exists and is not a template's (fcvm snapshot rm ", tag, ")"));
    }
    Say(tag, absl::StrCat("inputs changed (key ", existing->template_key(),
                          " -> ", key, "): building again"));
    RETURN_IF_ERROR(RemoveSnapshot(store, snapshots, tag, /*force=*/false));
  }
  const std::string vm = launch.state.name();
  if (store.Read(vm).ok()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "template ", tag, ": VM '", vm,
        "' exists: another build of it is running (or fcvm rm -f ", vm, ")"));
  }

  Say(tag, absl::StrCat("booting ", t.image(), " as VM ", vm));
  bool ready = false;
  std::string error;
  RunHooks hooks;
  hooks.ready = &ready;
  hooks.error = &error;
  hooks.print_name = false;  // This command prints JSON on stdout.
  ASSIGN_OR_RETURN(
      StartedRun started,
      StartDetachedRun(store, std::move(launch), options.holder_argv, hooks));
  (void)AwaitDetachedRun(store, started, absl::InfinitePast(), hooks);
  // From here on, every failure removes the VM (and so nothing is left).
  auto fail = [&](const std::string& why) {
    (void)RemoveVm(store, vm, /*force=*/true, absl::Seconds(10));
    return absl::FailedPreconditionError(
        absl::StrCat("template ", tag, ": ", why, " (VM ", vm, " removed)"));
  };
  if (!ready) {
    return fail(absl::StrCat("the VM was not ready: ",
                             error.empty() ? "it ended" : error));
  }
  const VmState& state = started.state;
  for (int i = 0; i < t.steps_size(); ++i) {
    const TemplateStep& step = t.steps(i);
    const absl::Time began = absl::Now();
    const std::vector<std::string> command(step.exec().begin(),
                                           step.exec().end());
    if (absl::Status ran = Exec(options, vm, step.vm(), command,
                                absl::Seconds(step.timeout_seconds() == 0
                                                  ? 300
                                                  : step.timeout_seconds()));
        !ran.ok()) {
      return fail(absl::StrCat("step ", i + 1, ": ", ran.message()));
    }
    Say(tag, absl::StrFormat("step %d/%d done in %.2f s", i + 1, t.steps_size(),
                             absl::ToDoubleSeconds(absl::Now() - began)));
  }

  const TemplateReadiness& ready_when = t.ready();
  uint16_t host_port = 0;
  if (ready_when.tcp_port() != 0) {
    for (const PublishedPort& port : state.ports()) {
      if (port.guest_port() == ready_when.tcp_port() &&
          port.protocol() != "udp") {
        host_port = static_cast<uint16_t>(port.host_port());
      }
    }
    if (host_port == 0) {
      return fail(absl::StrCat("ready.tcp_port ", ready_when.tcp_port(),
                               " is not published (publish it, or let the "
                               "image expose it)"));
    }
  }
  const absl::Duration wait = absl::Seconds(
      ready_when.timeout_seconds() == 0 ? 120 : ready_when.timeout_seconds());
  const absl::Time deadline = absl::Now() + wait;
  absl::Status last = absl::UnknownError("not checked");
  for (;;) {
    if (host_port != 0) {
      last = ready_when.http_path().empty()
                 ? TcpConnect(host_port)
                 : HttpGet(host_port, ready_when.http_path());
    } else {
      last = Exec(options, vm, false,
                  {ready_when.exec().begin(), ready_when.exec().end()},
                  std::max(absl::Seconds(1), deadline - absl::Now()));
    }
    if (last.ok() || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  if (!last.ok()) {
    return fail(absl::StrCat("not ready after ", absl::FormatDuration(wait),
                             ": ", last.message()));
  }
  Say(tag,
      absl::StrFormat("ready after %.2f s; taking its snapshot", seconds()));

  SnapshotRequest snapshot;
  snapshot.vm = vm;
  snapshot.tag = tag;
  snapshot.stop = true;
  snapshot.cache_key = *inputs;
  snapshot.template_key = key;
  absl::StatusOr<SnapshotManifest> made =
      CreateSnapshot(store, snapshots, snapshot);
  if (!made.ok()) return fail(std::string(made.status().message()));
  (void)RemoveVm(store, vm, /*force=*/true, absl::Seconds(30));
  built.set_built(true);
  built.set_seconds(seconds());
  return built;
}

}  // namespace fcvm::runner
