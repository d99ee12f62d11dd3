// fcvm clone TAG [--count N] [--name PREFIX] [-p HOST:GUEST...] [-d]
// [--mem-backend file|uffd]: VMs restored from a snapshot, each its own
// machine (runner/snapshot/clone.h).
#include "runner/cli/command.h"
#include "runner/snapshot/clone.h"
#include "runner/vm/run_flags.h"

namespace fcvm::runner {
namespace {

struct CloneValues {
  CloneRequest request;
  std::vector<std::string> ports;
  std::string memory = "file";
};

int Clone(Context& ctx, CloneValues& values) {
  CloneRequest& request = values.request;
  for (const std::string& value : values.ports) {
    absl::StatusOr<PublishedPort> port = ParsePublish(value);
    if (!port.ok()) return Complain(2, port.status());
    request.ports.push_back(*port);
  }
  if (values.memory == "uffd") {
    request.memory = MemoryBackend::kUffd;
    request.fcvm_argv = ctx.SelfArgv();
  } else if (values.memory != "file") {
    return Complain(2, "--mem-backend " + values.memory + ": file or uffd");
  }
  // More than one clone in the foreground cannot share the terminal.
  if (request.count > 1) request.detach = true;
  return CloneVms(ctx.store, SnapshotStore(ctx.store.root()), request,
                  ctx.HolderArgv());
}

}  // namespace

Command CloneCommand() {
  return {"clone",
          "VMs restored from a snapshot: clone TAG [--count N]",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto values = std::make_shared<CloneValues>();
            CloneRequest& r = values->request;
            app.add_option("TAG", r.tag, "the snapshot")->required();
            app.add_option(
                   "--count", r.count,
                   "how many clones (1 to 1000; more than 1 implies -d)")
                ->check(CLI::Range(1, 1000));
            app.add_option("--name", r.prefix,
                           "clones are PREFIX-1..N (default: the tag)");
            app.add_option(
                "-p,--publish", values->ports,
                "HOST:GUEST[/udp] (clone n gets HOST+n-1), or GUEST for a free "
                "host port; "
                "default: the snapshot's guest ports on free host ports");
            app.add_flag("-d,--detach", r.detach,
                         "return once every clone is ready");
            app.add_option(
                "--mem-backend", values->memory,
                "file (the snapshot's memory file, shared clean pages) or uffd "
                "(Firecracker's memory server)");
            return [&ctx, values] { return Clone(ctx, *values); };
          }};
}

}  // namespace fcvm::runner
