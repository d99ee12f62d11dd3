// fcvm exec [-i] [-t] [-d] [-e K=V]... [-w DIR] [-u USER] [--timeout D]
//           [--vm] NAME [--] CMD [ARGS...]
// A command in a running VM's container (`podman exec` in the guest, or in
// the VM itself with --vm), over the VM's control channel
// (runner/exec/). Podman's flags and exit status: the command's own, 125
// for fcvm's failures, 124 when --timeout killed it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runner/cli/command.h"
#include "runner/exec/client.h"
#include "runner/exec/connect.h"
#include "runner/exec/pump.h"
#include "runner/exec/terminal.h"

namespace fcvm::runner {
namespace {

struct ExecFlags {
  bool interactive = false;
  bool tty = false;
  bool detach = false;
  bool in_vm = false;
  std::vector<std::string> env;
  std::string workdir, user, timeout;
};

constexpr int kFcvmFailed = 125;  // Podman's code for its own failures.

// CLI11 keeps the '=' of "-e=NAME=VALUE"; Podman does not.
std::string DropEquals(const std::string& value) {
  return absl::StartsWith(value, "=") ? value.substr(1) : value;
}
constexpr int kTimedOut = 124;  // timeout(1)'s.

int Exec(Context& ctx, const ExecFlags& flags,
         std::vector<std::string> remaining) {
  constexpr char kUsage[] = "exec [FLAGS] NAME [--] CMD [ARGS...]";
  if (remaining.empty()) {
    return Complain(kFcvmFailed,
                    absl::StrCat("exec: no VM named (", kUsage, ")"));
  }
  const std::string name = remaining.front();
  remaining.erase(remaining.begin());
  if (!remaining.empty() && remaining.front() == "--") {
    remaining.erase(remaining.begin());
  }
  if (remaining.empty()) {
    return Complain(kFcvmFailed,
                    absl::StrCat("exec ", name, ": no command (", kUsage, ")"));
  }
  channel::Exec request;
  for (std::string& arg : remaining) request.add_argv(std::move(arg));
  for (const std::string& given : flags.env) {
    const std::string entry = DropEquals(given);
    if (entry.empty() || entry[0] == '=') {
      return Complain(kFcvmFailed, absl::StrCat("exec: --env '", entry,
                                                "': expected NAME=VALUE"));
    }
    if (entry.find('=') != std::string::npos) {
      request.add_env(entry);
    } else if (const char* value = std::getenv(entry.c_str())) {
      request.add_env(absl::StrCat(entry, "=", value));  // Podman's "-e NAME".
    }
  }
  request.set_working_dir(DropEquals(flags.workdir));
  request.set_user(DropEquals(flags.user));
  request.set_stdin(flags.interactive);
  request.set_tty(flags.tty);
  request.set_in_vm(flags.in_vm);
  request.set_detach(flags.detach);
  absl::Duration timeout = absl::ZeroDuration();
  if (!flags.timeout.empty()) {
    if (!absl::ParseDuration(flags.timeout, &timeout) ||
        timeout <= absl::ZeroDuration() ||
        timeout > absl::Milliseconds(UINT32_MAX)) {
      return Complain(kFcvmFailed,
                      absl::StrCat("exec: --timeout '", flags.timeout,
                                   "': expected a duration such as 10s, "
                                   "500ms, 2m"));
    }
    request.set_timeout_ms(static_cast<uint32_t>(
        absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)))));
  }

  absl::StatusOr<std::unique_ptr<exec::HubClient>> client =
      exec::ConnectToVm(ctx.store, name);
  if (!client.ok()) return Complain(kFcvmFailed, client.status());
  // Raw only when the keys go to the guest: with -t alone nothing reads
  // them, and Ctrl-C must still stop fcvm (which ends the session).
  std::unique_ptr<exec::RawTerminal> raw;
  if (flags.tty && flags.interactive && !flags.detach && isatty(0)) {
    absl::StatusOr<std::unique_ptr<exec::RawTerminal>> entered =
        exec::RawTerminal::Enter(0);
    if (!entered.ok()) return Complain(kFcvmFailed, entered.status());
    raw = *std::move(entered);
  }
  absl::StatusOr<exec::ExecResult> result =
      exec::RunExec(**client, request, 0, 1, 2);
  raw.reset();  // The terminal back before any message.
  if (!result.ok()) {
    return Complain(
        kFcvmFailed,
        exec::IsChannelError(result.status())
            ? std::string(result.status().message())
            : absl::StrCat("VM '", name, "': ", result.status().message()));
  }
  if (flags.detach) {
    // A command that could not start says so as `podman exec -d` does.
    if (result->exit.code() != 0) return result->exit.code();
    std::printf("%s\n", result->id.c_str());
    return 0;
  }
  if (result->exit.timed_out()) {
    const std::string what =
        !result->exit.message().empty()
            ? result->exit.message()
            : absl::StrCat("timed out after ", absl::FormatDuration(timeout),
                           "; killed the session's processes in the guest");
    std::fprintf(stderr, "fcvm exec: %s: %s\n", name.c_str(), what.c_str());
    return kTimedOut;
  }
  return result->exit.code();
}

}  // namespace

Command ExecCommand() {
  return {
      "exec",
      "run a command in a running VM's container: exec [-it] NAME [--] "
      "CMD [ARGS...]",
      {},
      [](CLI::App& app, Context& ctx) -> std::function<int()> {
        auto flags = std::make_shared<ExecFlags>();
        app.add_flag("-i,--interactive", flags->interactive,
                     "forward stdin to the command");
        app.add_flag("-t,--tty", flags->tty,
                     "a pseudo-terminal for the command (raw mode here "
                     "with -i on a terminal)");
        app.add_flag("-d,--detach", flags->detach,
                     "leave it running in the background; print its id");
        app.add_option("-e,--env", flags->env,
                       "NAME=VALUE, or NAME for the host's value "
                       "(repeatable)")
            ->take_all()
            ->expected(1)
            ->allow_extra_args(false);
        app.add_option("-w,--workdir", flags->workdir,
                       "working directory in the container");
        app.add_option("-u,--user", flags->user,
                       "user[:group] in the container");
        app.add_option("--timeout", flags->timeout,
                       "kill it after this long (10s, 500ms, 2m): exit 124");
        app.add_flag("--vm", flags->in_vm,
                     "in the VM itself, outside the container (debugging)");
        // NAME and the command are the rest, flags of the command
        // included (as podman exec reads them).
        app.prefix_command();
        return
            [&ctx, &app, flags] { return Exec(ctx, *flags, app.remaining()); };
      }};
}

}  // namespace fcvm::runner
