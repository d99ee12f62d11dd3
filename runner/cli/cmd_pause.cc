// fcvm pause NAME... / fcvm resume NAME...: the VM's owner stops or
// restarts its vCPUs (QMP stop/cont, Firecracker PATCH /vm); memory,
// devices and connections stay.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "runner/cli/command.h"
#include "runner/state/lease.h"
#include "runner/vm/control.h"

namespace fcvm::runner {
namespace {

int Ask(Context& ctx, const std::vector<std::string>& names, bool pause) {
  int code = 0;
  for (const std::string& name : names) {
    absl::StatusOr<VmState> state = ctx.store.Read(name);
    if (!state.ok()) {
      code = Complain(1, state.status());
      continue;
    }
    if (!Lease::Held(state->dir())) {
      code = Complain(1, absl::StrCat("VM '", name, "' is not running"));
      continue;
    }
    ControlRequest request;
    if (pause) {
      request.mutable_pause();
    } else {
      request.mutable_resume();
    }
    absl::StatusOr<ControlReply> reply = SendControl(state->dir(), request);
    if (!reply.ok()) {
      code = Complain(1, absl::StrCat(name, ": ", reply.status().message()));
    } else if (!reply->ok()) {
      code = Complain(1, reply->error());
    } else {
      std::printf("%s\n", name.c_str());
    }
  }
  return code;
}

Command Make(bool pause) {
  return {pause ? "pause" : "resume",
          pause ? "pause VMs (their vCPUs stop; memory and devices stay)"
                : "resume paused VMs",
          {},
          [pause](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto names = std::make_shared<std::vector<std::string>>();
            app.add_option("NAME", *names, "VMs")->required();
            return [&ctx, names, pause] { return Ask(ctx, *names, pause); };
          }};
}

}  // namespace

Command PauseCommand() { return Make(true); }
Command ResumeCommand() { return Make(false); }

}  // namespace fcvm::runner
