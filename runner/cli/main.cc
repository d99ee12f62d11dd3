// fcvm: run Podman containers in microVMs. See runner/README.md.
//   fcvm [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS...]
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runner/cli/command.h"
#include "runner/cli/context.h"

namespace fcvm::runner {

int Complain(int code, const std::string& message) {
  std::fprintf(stderr, "fcvm: %s\n", message.c_str());
  return code;
}

int Complain(int code, const absl::Status& status) {
  return Complain(code, std::string(status.message()));
}

namespace {

int Main(int argc, char** argv) {
  const std::vector<Command> commands = {
      RunCommand(),      LsCommand(),           InspectCommand(),
      LogsCommand(),     StopCommand(),         RmCommand(),
      GcCommand(),       PauseCommand(),        ResumeCommand(),
      SnapshotCommand(), CloneCommand(),        TopCommand(),
      CacheCommand(),    TemplateCommand(),     ExecCommand(),
      CpCommand(),       PreflightCommand(),    SetupCommand(),
      ServeCommand(),    MemoryServerCommand(), ApiCommand(),
      NetnsHolderCommand()};
  CLI::App app("fcvm: run Podman containers in microVMs (runner/README.md)",
               "fcvm");
  Context context;
  app.add_option("--state_dir", context.state_dir,
                 "VM state (default: $FCVM_STATE_DIR, /run/fcvm for root, "
                 "else $XDG_RUNTIME_DIR/fcvm)");
  app.add_option("--assets", context.assets_dir,
                 "a release's share/fcvm (or its top directory): the guest's "
                 "kernel, base.ext4 and images (default: $FCVM_ASSETS, else "
                 "../share/fcvm next to this binary, else "
                 "/var/lib/fcvm/VERSION)");
  bool version = false;
  app.add_flag("--version", version,
               "the version, the source commit and the assets this fcvm "
               "would use, with their digests");
  app.add_option("--kernel", context.kernel,
                 "the guest kernel (with --rootfs: instead of a release's)");
  app.add_option("--rootfs", context.rootfs, "the guest's base.ext4");
  app.add_option("--oci", context.oci,
                 "NAME=ARCHIVE: a locally built OCI archive for image NAME "
                 "(repeatable)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  app.add_option("--cache_max_bytes", context.cache_max_bytes,
                 "the startup-snapshot cache's size limit, e.g. 8g (default "
                 "8g): least recently used entries go first");
  app.add_option("--image-rootfs", context.image_rootfs,
                 "NAME=EXT4: image NAME baked as a read-only root filesystem, "
                 "run with the config of its --oci archive and never loaded "
                 "into Podman's store (repeatable)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  app.add_option("--arch", context.arch,
                 "the guest's CPU (default: the host's)");
  app.add_option("--firecracker", context.firecracker,
                 "the firecracker binary (default: $FCVM_FIRECRACKER, else "
                 "PATH's)");
  app.require_subcommand(0, 1);
  std::function<int()> chosen;
  for (const Command& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.synopsis);
    for (const std::string& alias : command.aliases) sub->alias(alias);
    if (command.hidden) sub->group("");
    auto run = command.setup(*sub, context);
    sub->callback([&chosen, run] { chosen = run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::fprintf(stderr, "fcvm: %s (fcvm [COMMAND] --help)\n", error.what());
    return 2;
  }
  if (absl::Status finished = context.Finish(); !finished.ok()) {
    return Complain(2, finished);
  }
  if (version) return PrintVersion(context);
  return chosen ? chosen() : Complain(2, "no command (fcvm --help)");
}

}  // namespace
}  // namespace fcvm::runner

int main(int argc, char** argv) { return fcvm::runner::Main(argc, argv); }
