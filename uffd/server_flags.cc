#include "uffd/server_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace fcvm::uffd {
namespace {

// `value` as a duration for `flag`; zero only if `zero_ok`.
[[nodiscard]] absl::StatusOr<absl::Duration> Duration(const std::string& flag,
                                                      const std::string& value,
                                                      bool zero_ok) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration() ||
      (!zero_ok && d == absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " '", value, "': a duration like 10s or 500ms",
                     zero_ok ? " (0: never)" : ", more than 0"));
  }
  return d;
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerFlagValues* v) {
  app.add_option("MEMORY_FILE", v->memory_file,
                 "the snapshot's memory file (mapped read-only)");
  app.add_option("--socket", v->socket,
                 "the Unix socket Firecracker connects to (created mode "
                 "0600; a stale one is replaced, a live server's refused)");
  app.add_option("--threads", v->threads,
                 "fault loops, each on a thread of its own (default: one per "
                 "CPU, at most 4)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--record_window", v->record_window,
                 "when the memory file has no working set yet: the first "
                 "VM's faults during this long become it (0: never)")
      ->capture_default_str();
  app.add_flag("--prefetch,!--no-prefetch,!--no_prefetch", v->prefetch,
               "prefetch the working set into each VM after its handshake "
               "(default; --no-prefetch: on demand only)");
  app.add_option("--batch_bytes", v->batch_bytes,
                 "prefetch: contiguous pages up to this many bytes per "
                 "UFFDIO_COPY")
      ->capture_default_str();
  app.add_flag("--exit_when_idle", v->exit_when_idle,
               "exit once the last VM has gone (after the first came)");
  app.add_option("--handshake_timeout", v->handshake_timeout,
                 "a connection whose handshake is not complete this long "
                 "after it came is refused")
      ->capture_default_str();
  app.add_option("--max_pending_handshakes", v->max_pending_handshakes,
                 "connections whose handshake is being read, at most; more "
                 "are closed at once")
      ->capture_default_str();
  app.add_option("--file_check_interval", v->file_check_interval,
                 "how often the memory file is checked for changes (also at "
                 "every handshake)")
      ->capture_default_str();
}

[[nodiscard]] absl::StatusOr<ServerOptions> FinishServerFlags(
    const ServerFlagValues& v) {
  ServerOptions options;
  if (v.memory_file.empty()) {
    return absl::InvalidArgumentError("MEMORY_FILE: required");
  }
  options.memory_file = v.memory_file;
  if (v.socket.empty()) return absl::InvalidArgumentError("--socket: required");
  options.socket_path = v.socket;
  if (v.threads < 0) {  // CLI11 checks what is given: only a caller's bug.
    return absl::InvalidArgumentError(
        absl::StrCat("--threads ", v.threads, ": a count >= 1"));
  }
  options.threads = v.threads == 0 ? DefaultThreads() : v.threads;
  auto window = Duration("--record_window", v.record_window, /*zero_ok=*/true);
  if (!window.ok()) return window.status();
  options.record_window = *window;
  options.prefetch = v.prefetch;
  if (v.batch_bytes == 0) {
    return absl::InvalidArgumentError("--batch_bytes 0: more than 0 bytes");
  }
  options.batch_bytes = v.batch_bytes;
  options.exit_when_idle = v.exit_when_idle;
  auto timeout =
      Duration("--handshake_timeout", v.handshake_timeout, /*zero_ok=*/false);
  if (!timeout.ok()) return timeout.status();
  options.handshake_timeout = *timeout;
  if (v.max_pending_handshakes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max_pending_handshakes ",
                                                   v.max_pending_handshakes,
                                                   ": a count >= 1"));
  }
  options.max_pending_handshakes = v.max_pending_handshakes;
  auto interval = Duration("--file_check_interval", v.file_check_interval,
                           /*zero_ok=*/false);
  if (!interval.ok()) return interval.status();
  options.file_check_interval = *interval;
  return options;
}

[[nodiscard]] absl::StatusOr<ServerOptions> ParseServerFlags(
    const std::vector<std::string>& args) {
  CLI::App app("memory server");
  ServerFlagValues values;
  AddServerFlags(app, &values);
  // CLI11 takes the arguments last first.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return FinishServerFlags(values);
}

}  // namespace fcvm::uffd
