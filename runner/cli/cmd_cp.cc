// fcvm cp SRC DST: files between the host and a running VM's container,
// with podman cp's syntax: NAME:PATH on exactly one side, "-" for a tar
// stream on stdin or stdout (runner/exec/cp.h). Exit status 1 when the
// copy failed (the agent's words are printed), 125 when fcvm could not
// reach the VM.
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "runner/cli/command.h"
#include "runner/exec/client.h"
#include "runner/exec/connect.h"
#include "runner/exec/cp.h"

namespace fcvm::runner {
namespace {

constexpr int kFcvmFailed = 125;

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "fcvm cp: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return code;
}

int Copy(Context& ctx, const std::string& src, const std::string& dst) {
  absl::StatusOr<exec::CpArgs> args = exec::ParseCpArgs(src, dst);
  if (!args.ok()) return Complain(2, args.status());
  const std::string host =
      args->host_path == "-" ? "-" : ctx.Resolve(args->host_path);
  absl::StatusOr<std::unique_ptr<exec::HubClient>> client =
      exec::ConnectToVm(ctx.store, args->vm);
  if (!client.ok()) return Fail(kFcvmFailed, client.status().message());
  const absl::Status copied =
      args->to_vm ? exec::CopyToVm(**client, host, args->vm_path, 0)
                  : exec::CopyFromVm(**client, args->vm_path, host, 1);
  if (copied.ok()) return 0;
  return Fail(exec::IsChannelError(copied) ? kFcvmFailed : 1, copied.message());
}

}  // namespace

Command CpCommand() {
  return {
      "cp",
      "copy files between the host and a VM's container: cp NAME:PATH "
      "HOST_PATH, cp HOST_PATH NAME:PATH (\"-\": a tar on stdin/stdout)",
      {},
      [](CLI::App& app, Context& ctx) -> std::function<int()> {
        auto paths = std::make_shared<std::pair<std::string, std::string>>();
        app.add_option("SRC", paths->first, "NAME:PATH, a host path, or -")
            ->required();
        app.add_option("DST", paths->second, "NAME:PATH, a host path, or -")
            ->required();
        return [&ctx, paths] { return Copy(ctx, paths->first, paths->second); };
      }};
}

}  // namespace fcvm::runner
