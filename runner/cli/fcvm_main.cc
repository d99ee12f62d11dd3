// fcvm: run Podman containers in microVMs. See runner/README.md.
//   fcvm [--state_dir DIR] [--kernel K --rootfs R --oci NAME=TAR ...]
//        COMMAND [ARGS...]
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runner/cli/cli.h"

namespace fcvm::runner {
namespace {

constexpr char kUsage[] =
    "usage: fcvm [GLOBAL FLAGS] COMMAND [ARGS...]\n"
    "commands:\n"
    "  run (vm) [FLAGS] IMAGE [ARGS...]  boot a VM that runs IMAGE\n"
    "  ls [--json]                       list VMs\n"
    "  inspect NAME                      a VM's state as JSON\n"
    "  logs [-f] [--console] NAME        the container's output\n"
    "  stop NAME...                      stop gracefully\n"
    "  rm [-f] NAME...                   remove stopped VMs (-f: stop first)\n"
    "  gc                                clean up after killed runners\n"
    "  preflight                         what this machine can run\n"
    "  serve MEMORY_FILE --socket PATH   serve a snapshot's memory over\n"
    "                                    userfaultfd (uffd/README.md)\n"
    "global flags:\n"
    "  --state_dir DIR   VM state (default: $FCVM_STATE_DIR, /run/fcvm,\n"
    "                    or $XDG_RUNTIME_DIR/fcvm)\n"
    "  --kernel PATH     guest kernel     --rootfs PATH  base.ext4\n"
    "  --oci NAME=TAR    a locally built OCI archive for image NAME\n"
    "  --arch CPU        guest CPU (default: the host's)\n";

std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  return absl::StrCat(getcwd(cwd, sizeof(cwd)) ? cwd : ".", "/", path);
}

}  // namespace

int Main(int argc, char** argv) {
  Cli cli;
  std::string state_dir;
  struct utsname u;
  cli.arch = uname(&u) == 0 ? u.machine : "x86_64";
  const char* bwd = std::getenv("BUILD_WORKING_DIRECTORY");
  char cwd[4096];
  cli.workdir = bwd ? bwd : (getcwd(cwd, sizeof(cwd)) ? cwd : ".");
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& flag, std::string* out) {
      if (absl::StartsWith(arg, flag + "=")) {
        *out = arg.substr(flag.size() + 1);
        return true;
      }
      if (arg == flag && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      return false;
    };
    std::string v;
    if (value("--state_dir", &state_dir)) continue;
    if (value("--kernel", &cli.kernel)) continue;
    if (value("--rootfs", &cli.rootfs)) continue;
    if (value("--arch", &cli.arch)) continue;
    if (value("--oci", &v)) {
      const size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Complain(2,
                        absl::StrCat("--oci '", v, "': expected NAME=ARCHIVE"));
      }
      cli.oci[v.substr(0, eq)] = Absolute(v.substr(eq + 1));
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (absl::StartsWith(arg, "-")) {
      return Complain(
          2, absl::StrCat("unknown global flag '", arg, "'\n", kUsage));
    }
    break;
  }
  if (i >= argc) return Complain(2, absl::StrCat("no command\n", kUsage));
  cli.kernel = Absolute(cli.kernel);
  cli.rootfs = Absolute(cli.rootfs);
  cli.store = StateStore(state_dir.empty() ? StateStore::DefaultRoot()
                                           : Absolute(state_dir));
  const std::string command = argv[i];
  const std::vector<std::string> args(argv + i + 1, argv + argc);
  const std::map<std::string,
                 std::function<int(Cli&, const std::vector<std::string>&)>>
      commands = {{"run", RunCommand},
                  {"vm", RunCommand},
                  {"ls", LsCommand},
                  {"inspect", InspectCommand},
                  {"logs", LogsCommand},
                  {"stop", StopCommand},
                  {"rm", RmCommand},
                  {"gc", GcCommand},
                  {"preflight", PreflightCommand},
                  {"serve", ServeCommand},
                  {"netns-holder", NetnsHolderCommand}};
  auto found = commands.find(command);
  if (found == commands.end()) {
    return Complain(2,
                    absl::StrCat("unknown command '", command, "'\n", kUsage));
  }
  return found->second(cli, args);
}

}  // namespace fcvm::runner

int main(int argc, char** argv) { return fcvm::runner::Main(argc, argv); }
