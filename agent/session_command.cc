#include "agent/session_command.h"

#include <dirent.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::agent {
namespace {

[[nodiscard]] absl::Status CheckPath(absl::string_view what,
                                     const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': an absolute path in the container"));
  }
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": a NUL byte"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SessionCommand> ExecCommand(const channel::Exec& exec,
                                           const std::string& podman,
                                           const std::string& container,
                                           const std::string& session_id) {
  if (exec.argv_size() == 0 || exec.argv(0).empty()) {
    return absl::InvalidArgumentError("exec: no command");
  }
  for (const std::string& entry : exec.env()) {
    const size_t eq = entry.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "exec: environment entry '", entry, "' is not NAME=value"));
    }
  }
  if (!exec.working_dir().empty() && exec.working_dir()[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "exec: working directory '", exec.working_dir(), "' is not absolute"));
  }
  const std::string marker = absl::StrCat(kSessionEnv, "=", session_id);
  SessionCommand command;
  if (exec.in_vm()) {
    if (!exec.user().empty()) {
      command.argv = {"runuser", "-u", exec.user(), "--"};
    }
    command.argv.insert(command.argv.end(), exec.argv().begin(),
                        exec.argv().end());
    command.env.assign(exec.env().begin(), exec.env().end());
    command.env.push_back(marker);
    if (exec.tty()) command.env.push_back("TERM=xterm");
    command.working_dir = exec.working_dir();
    return command;
  }
  command.argv = {podman, "exec"};
  if (exec.detach()) command.argv.push_back("-d");
  // -i keeps podman's stdin open for the process: only when the host sends
  // it (or a terminal's keys), or the command would wait on our pipe.
  const bool attached = !exec.detach();  // -d takes no stdin, no terminal.
  if (attached && (exec.stdin() || exec.tty())) command.argv.push_back("-i");
  if (attached && exec.tty()) {
    command.argv.push_back("-t");
    command.argv.insert(command.argv.end(), {"-e", "TERM=xterm"});
  }
  for (const std::string& entry : exec.env()) {
    command.argv.insert(command.argv.end(), {"-e", entry});
  }
  command.argv.insert(command.argv.end(), {"-e", marker});
  if (!exec.working_dir().empty()) {
    command.argv.insert(command.argv.end(), {"-w", exec.working_dir()});
  }
  if (!exec.user().empty()) {
    command.argv.insert(command.argv.end(), {"-u", exec.user()});
  }
  command.argv.push_back(container);
  command.argv.insert(command.argv.end(), exec.argv().begin(),
                      exec.argv().end());
  // Podman itself is found by the marker too (it carries it in its own
  // environment), so a kill reaches it and what it started.
  command.env.push_back(marker);
  return command;
}

absl::StatusOr<SessionCommand> CopyOutCommand(const channel::CopyOut& copy,
                                              const std::string& podman,
                                              const std::string& container,
                                              const std::string& session_id) {
  RETURN_IF_ERROR(CheckPath("copy from", copy.path()));
  SessionCommand command;
  command.argv = {podman, "cp", absl::StrCat(container, ":", copy.path()), "-"};
  command.env.push_back(absl::StrCat(kSessionEnv, "=", session_id));
  return command;
}

absl::StatusOr<SessionCommand> CopyInCommand(const channel::CopyIn& copy,
                                             const std::string& podman,
                                             const std::string& container,
                                             const std::string& session_id) {
  RETURN_IF_ERROR(CheckPath("copy to", copy.path()));
  SessionCommand command;
  command.argv = {podman, "cp", "-", absl::StrCat(container, ":", copy.path())};
  command.env.push_back(absl::StrCat(kSessionEnv, "=", session_id));
  return command;
}

std::vector<pid_t> SessionProcesses(const std::string& proc_root,
                                    const std::string& session_id) {
  std::vector<pid_t> pids;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return pids;
  const std::string marker = absl::StrCat(kSessionEnv, "=", session_id);
  while (dirent* entry = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
    absl::StatusOr<std::string> environ =
        ReadFile(absl::StrCat(proc_root, "/", entry->d_name, "/environ"));
    if (!environ.ok()) continue;  // Gone, or a kernel thread.
    size_t start = 0;
    while (start < environ->size()) {
      size_t end = environ->find('\0', start);
      if (end == std::string::npos) end = environ->size();
      if (absl::string_view(*environ).substr(start, end - start) == marker) {
        pids.push_back(pid);
        break;
      }
      start = end + 1;
    }
  }
  closedir(dir);
  return pids;
}

}  // namespace fcvm::agent
