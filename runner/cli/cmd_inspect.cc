// fcvm inspect NAME...: the VMs' states as JSON (an array, as Podman does),
// with whether each one's owner lives.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/command.h"
#include "runner/state/lease.h"
#include "runner/vm/channel_hub.h"
#include "runner/vm/usage.h"

namespace fcvm::runner {
namespace {

int Inspect(Context& ctx, const std::vector<std::string>& names) {
  std::vector<std::string> items;
  int code = 0;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  for (const std::string& name : names) {
    absl::StatusOr<VmState> state = ctx.store.Read(name);
    if (!state.ok()) {
      code = Complain(1, state.status());
      continue;
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*state, &json, options);
    // Fields that are not in the state file: the lease's answer now, and
    // what the VMM costs the host now (runner/vm/usage.h).
    const bool alive = Lease::Held(state->dir());
    absl::StatusOr<MemoryUsage> memory =
        alive ? ReadMemoryUsage(state->vmm_pid(), state->vmm_start_ticks())
              : absl::NotFoundError("");
    if (memory.ok()) {
      json.insert(1,
                  absl::StrCat("\n \"memory_kib\": {\"rss\": ", memory->rss_kib,
                               ", \"pss\": ", memory->pss_kib,
                               ", \"shared\": ", memory->shared_kib,
                               ", \"private\": ", memory->private_kib, "},"));
    }
    if (alive && !state->spec().channel().empty()) {
      json.insert(1,
                  absl::StrCat("\n \"channel\": ",
                               ChannelJson(ProbeChannel(state->dir())), ","));
    }
    json.insert(
        1, alive ? "\n \"owner_alive\": true," : "\n \"owner_alive\": false,");
    items.push_back(json);
  }
  std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
  return code;
}

}  // namespace

Command InspectCommand() {
  return {"inspect",
          "the VMs' states as JSON",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto names = std::make_shared<std::vector<std::string>>();
            app.add_option("NAME", *names, "VMs")->required();
            return [&ctx, names] { return Inspect(ctx, *names); };
          }};
}

}  // namespace fcvm::runner
