#ifndef FCVM_BASE_SUBPROCESS_H_
#define FCVM_BASE_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace fcvm {

// How a child process ended.
struct ExitStatus {
  // Exactly one of these is meaningful: `code` if !signaled, else `signal`.
  bool signaled = false;
  int code = 0;
  int signal = 0;

  bool success() const { return !signaled && code == 0; }
  // "exited with status 3" / "was killed by signal 9 (Killed)".
  std::string ToString() const;
  // OK on success, else an error naming `program`, how it ended, and (if
  // given) the tail of what it wrote to stderr.
  [[nodiscard]] absl::Status ToStatus(
      absl::string_view program, absl::string_view stderr_output = "") const;
};

// What to connect a child's standard stream to.
enum class StdioMode {
  kInherit,  // The parent's stream.
  kNull,     // /dev/null.
  kPipe,     // A pipe owned by the Subprocess object.
  kFile,     // Output only: appended to SubprocessOptions::*_file.
};

// Where Debian installs system tools (mke2fs, e2fsck, debugfs), which a
// normal user's PATH lacks. Programs not found in PATH are looked for here,
// in this order.
inline constexpr const char* kSystemProgramDirs[] = {"/usr/local/sbin",
                                                     "/usr/sbin", "/sbin"};

// The executable a Subprocess started with `program` as argv[0] runs: a name
// with a slash as given, else the first match in PATH, else in
// kSystemProgramDirs. NotFound naming the program if there is none.
[[nodiscard]] absl::StatusOr<std::string> FindProgram(
    const std::string& program);

// Whether FindProgram finds `program`.
bool InPath(const std::string& program);

struct SubprocessOptions {
  // argv[0] is looked up in PATH when it has no slash.
  std::vector<std::string> argv;
  // The complete environment; nullopt inherits the parent's.
  std::optional<std::vector<std::string>> env;
  // Empty: the parent's working directory.
  std::string working_dir;
  StdioMode stdin_mode = StdioMode::kNull;
  StdioMode stdout_mode = StdioMode::kInherit;
  StdioMode stderr_mode = StdioMode::kInherit;
  // For StdioMode::kFile: the files (created 0600 if missing) that stdout
  // and stderr are appended to. The same path for both is fine.
  std::string stdout_file;
  std::string stderr_file;
  // Start the child in a process group of its own, so that Kill() and the
  // destructor also reach the processes it started.
  bool new_process_group = true;
};

// A running child process. Destroying the object while the child runs kills
// it (SIGKILL to its process group) and reaps it: no child outlives its
// owner by accident, even on an error path. Move-only.
class Subprocess {
 public:
  // Starts the child. Fails (naming the program) if it cannot be executed.
  [[nodiscard]] static absl::StatusOr<Subprocess> Start(
      SubprocessOptions options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // The program name used in messages (argv[0]).
  const std::string& name() const { return name_; }

  // Pipe ends for streams started with StdioMode::kPipe (else invalid). The
  // caller may take them; closing stdin signals end of input.
  UniqueFd& stdin_pipe() { return stdin_; }
  UniqueFd& stdout_pipe() { return stdout_; }
  UniqueFd& stderr_pipe() { return stderr_; }

  // Waits up to `timeout` for the child to exit and reaps it. Returns
  // kDeadlineExceeded, leaving it running, if it has not exited by then.
  [[nodiscard]] absl::StatusOr<ExitStatus> Wait(
      absl::Duration timeout = absl::InfiniteDuration());

  // Sends `signal` to the child (its process group if it has one).
  [[nodiscard]] absl::Status Signal(int signal);

  // SIGKILL to the child (and its group), then reaps it.
  [[nodiscard]] absl::StatusOr<ExitStatus> Kill();

  // Becomes readable (POLLIN) when the child exits, for event loops that
  // wait on several things at once; then Wait() reaps it without blocking.
  int exit_fd() const { return pidfd_.get(); }

  // Whether the child has been reaped.
  bool finished() const { return exit_status_.has_value(); }

  struct Output {
    ExitStatus exit;
    std::string stdout_data;
    std::string stderr_data;
  };

  // Writes `input` to the stdin pipe (then closes it), collects the stdout
  // and stderr pipes until end of file, and waits for the child. If that
  // takes longer than `timeout`, kills the child and returns
  // kDeadlineExceeded naming the program.
  [[nodiscard]] absl::StatusOr<Output> Communicate(
      absl::string_view input = "",
      absl::Duration timeout = absl::InfiniteDuration());

 private:
  Subprocess() = default;
  void KillAndReap();

  pid_t pid_ = -1;
  bool group_ = false;
  std::string name_;
  UniqueFd pidfd_;  // Readable once the child has exited.
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;
  std::optional<ExitStatus> exit_status_;
};

// Runs a program to completion with its stdout and stderr captured (stdin
// from `input`). OK only if it exits 0 within `timeout`; otherwise the error
// says how it ended and quotes the end of its stderr.
[[nodiscard]] absl::StatusOr<Subprocess::Output> RunCommand(
    SubprocessOptions options, absl::Duration timeout,
    absl::string_view input = "");

}  // namespace fcvm

#endif  // FCVM_BASE_SUBPROCESS_H_
