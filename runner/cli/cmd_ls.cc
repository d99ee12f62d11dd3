// fcvm ls [--json]: every VM, its newest state and whether its owner lives
// (its lease, asked without waiting); no lock is taken.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/command.h"
#include "runner/vm/channel_hub.h"
#include "runner/vm/listing.h"
#include "runner/vm/usage.h"

namespace fcvm::runner {
namespace {

int Ls(Context& ctx, bool json) {
  absl::StatusOr<std::vector<ListedVm>> vms = ListVms(ctx.store);
  if (!vms.ok()) return Complain(1, vms.status());
  if (json) {
    std::vector<std::string> items;
    for (const ListedVm& vm : *vms) {
      VmState shown = vm.entry.state.ok() ? *vm.entry.state : VmState();
      shown.set_name(vm.entry.name);
      if (!vm.entry.state.ok())
        shown.set_error(std::string(vm.entry.state.status().message()));
      std::string item;
      (void)google::protobuf::util::MessageToJsonString(shown, &item);
      // Not in the state file: whether the owner lives, as inspect says.
      item.insert(
          1, vm.owner_alive ? "\"ownerAlive\":true," : "\"ownerAlive\":false,");
      if (vm.owner_alive && !shown.spec().channel().empty()) {
        item.insert(1, absl::StrCat("\"channel\":",
                                    ChannelJson(ProbeChannel(shown.dir())),
                                    ","));
      }
      items.push_back(item);
    }
    std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
    return 0;
  }
  std::printf("%-24s %-20s %-28s %-16s %9s %-14s %s\n", "NAME", "STATUS",
              "IMAGE", "BACKEND", "MEM (PSS)", "CHANNEL", "PORTS");
  for (const ListedVm& vm : *vms) {
    const VmState s = vm.entry.state.ok() ? *vm.entry.state : VmState();
    std::vector<std::string> ports;
    for (const PublishedPort& p : s.ports()) {
      ports.push_back(absl::StrCat("127.0.0.1:", p.host_port(), "->",
                                   p.guest_port(), "/", p.protocol()));
    }
    absl::StatusOr<MemoryUsage> memory =
        vm.owner_alive ? ReadMemoryUsage(s.vmm_pid(), s.vmm_start_ticks())
                       : absl::NotFoundError("");
    std::string channel = "-";
    if (vm.owner_alive && !s.spec().channel().empty()) {
      const ChannelStatus status = ProbeChannel(s.dir());
      channel = status.agent_up ? status.transport : "down";
    }
    std::printf(
        "%-24s %-20s %-28s %-16s %9s %-14s %s\n", vm.entry.name.c_str(),
        StatusText(vm).c_str(), s.image().c_str(),
        absl::StrCat(s.backend(), s.accel().empty() ? "" : "/", s.accel())
            .c_str(),
        memory.ok() ? Mib(memory->pss_kib).c_str() : "-", channel.c_str(),
        absl::StrJoin(ports, ", ").c_str());
  }
  return 0;
}

}  // namespace

Command LsCommand() {
  return {"ls",
          "list VMs",
          {"ps", "list"},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto json = std::make_shared<bool>(false);
            app.add_flag("--json", *json, "one JSON array of the VMs' states");
            return [&ctx, json] { return Ls(ctx, *json); };
          }};
}

}  // namespace fcvm::runner
