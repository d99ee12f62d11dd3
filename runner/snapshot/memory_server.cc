#include "runner/snapshot/memory_server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "runner/state/lease.h"
#include "runner/vm/listing.h"
#include "runner/vmm/vmm.h"

namespace fcvm::runner {
namespace {

constexpr char kReadyFile[] = "ready";

[[nodiscard]] absl::StatusOr<UniqueFd> OpenStartLock(
    const MemoryServerPaths& paths) {
  return OpenFd(paths.start_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

// flock(LOCK_EX) on `fd`, retried until `timeout` (flock has no timed
// wait).
[[nodiscard]] absl::Status LockWithin(int fd, const std::string& what,
                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoStatus(absl::StrCat("flock ", what));
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, " is still held after ", absl::FormatDuration(timeout),
          " (a clone, snapshot rm or gc of this snapshot is at work)"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

std::string Tail(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok() || text->empty()) return "";
  const size_t from = text->size() > 400 ? text->size() - 400 : 0;
  return text->substr(from);
}

}  // namespace

MemoryServerPaths MemoryServerPathsFor(const std::string& state_root,
                                       const std::string& tag) {
  MemoryServerPaths paths;
  paths.dir = absl::StrCat(state_root, "/memory-servers/", tag);
  paths.start_lock = absl::StrCat(paths.dir, "/start.lock");
  paths.socket = absl::StrCat(paths.dir, "/uffd.sock");
  paths.log = absl::StrCat(paths.dir, "/log");
  return paths;
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> UffdClones(
    const StateStore& store, const std::string& tag) {
  ASSIGN_OR_RETURN(std::vector<ListedVm> vms, ListVms(store));
  std::vector<std::string> names;
  for (const ListedVm& vm : vms) {
    if (vm.owner_alive && vm.entry.state.ok() &&
        vm.entry.state->restored_from().snapshot() == tag &&
        vm.entry.state->restored_from().memory_backend() == "uffd") {
      names.push_back(vm.entry.name);
    }
  }
  return names;
}

[[nodiscard]] absl::Status RunMemoryServer(const StateStore& store,
                                           const SnapshotStore& snapshots,
                                           const std::string& tag,
                                           bool on_demand,
                                           uffd::ServerOptions options) {
  RETURN_IF_ERROR(snapshots.Read(tag).status());
  const MemoryServerPaths paths = MemoryServerPathsFor(store.root(), tag);
  RETURN_IF_ERROR(EnsurePrivateDir(absl::StrCat(store.root(),
                                                "/memory-servers")));
  RETURN_IF_ERROR(EnsurePrivateDir(paths.dir));
  // The lease says a server lives; the first one creates it.
  // Waited for a moment: a clone probing whether a server lives holds the
  // lock for an instant too.
  std::optional<Lease> lease;
  absl::StatusOr<Lease> taken = Lease::Take(paths.dir, 500);
  if (absl::IsNotFound(taken.status())) {
    taken = Lease::Create(paths.dir);
  } else if (absl::IsDeadlineExceeded(taken.status())) {
    return absl::AlreadyExistsError(absl::StrCat(
        "a memory server of snapshot '", tag, "' runs already on ",
        paths.socket));
  }
  if (!taken.ok()) return taken.status();
  lease.emplace(std::move(*taken));
  const std::string ready = absl::StrCat(paths.dir, "/", kReadyFile);
  unlink(ready.c_str());
  options.memory_file =
      absl::StrCat(snapshots.TagDir(tag), "/", kSnapshotMemoryFile);
  options.socket_path = paths.socket;
  options.listening = [ready] {
    (void)WriteFileAtomically(ready, absl::StrCat(getpid(), "\n"), 0600);
  };
  // Held from the moment the server judges itself unused to its exit: a
  // clone that comes then waits for it, and starts the next server.
  std::optional<UniqueFd> leaving;
  if (on_demand) {
    const std::string memory_file = options.memory_file;
    options.exit_when_unused = [&store, &paths, &tag, &leaving, memory_file]() {
      // Its snapshot (or the whole state root) removed: nothing to serve.
      if (access(memory_file.c_str(), F_OK) != 0) return true;
      absl::StatusOr<UniqueFd> lock = OpenStartLock(paths);
      if (!lock.ok() || flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
        return false;  // A clone is being made.
      }
      absl::StatusOr<std::vector<std::string>> clones = UffdClones(store, tag);
      if (!clones.ok() || !clones->empty()) return false;
      leaving.emplace(std::move(*lock));
      return true;
    };
  }
  absl::Status served = uffd::ServeUntilSignalled(std::move(options));
  unlink(ready.c_str());
  // The lease before the start lock: a clone that gets the lock next finds
  // no server, and starts one.
  lease.reset();
  leaving.reset();
  return served;
}

[[nodiscard]] absl::StatusOr<EnsuredServer> EnsureMemoryServer(
    const std::string& state_root, const std::string& tag,
    const std::vector<std::string>& fcvm_argv, absl::Duration timeout) {
  const MemoryServerPaths paths = MemoryServerPathsFor(state_root, tag);
  RETURN_IF_ERROR(
      EnsurePrivateDir(absl::StrCat(state_root, "/memory-servers")));
  RETURN_IF_ERROR(EnsurePrivateDir(paths.dir));
  EnsuredServer ensured;
  ensured.socket = paths.socket;
  ASSIGN_OR_RETURN(ensured.start_lock, OpenStartLock(paths));
  RETURN_IF_ERROR(LockWithin(ensured.start_lock.get(), paths.start_lock,
                             timeout));
  const std::string ready = absl::StrCat(paths.dir, "/", kReadyFile);
  if (Lease::Held(paths.dir) && access(ready.c_str(), F_OK) == 0) {
    return ensured;
  }
  // None runs: setsid -f, so the server belongs to nobody's session and
  // outlives this command; the start lock is close-on-exec, so it never
  // holds it.
  auto start_server = [&]() -> absl::Status {
    unlink(ready.c_str());  // A killed server's: not the next one's word.
    SubprocessOptions start;
    start.argv = {"setsid", "-f"};
    start.argv.insert(start.argv.end(), fcvm_argv.begin(), fcvm_argv.end());
    for (const char* arg : {"memory-server", tag.c_str(), "--on-demand"}) {
      start.argv.push_back(arg);
    }
    start.stdout_mode = StdioMode::kFile;
    start.stderr_mode = StdioMode::kFile;
    start.stdout_file = start.stderr_file = paths.log;
    start.stdin_mode = StdioMode::kNull;
    ASSIGN_OR_RETURN(Subprocess setsid, Subprocess::Start(std::move(start)));
    ASSIGN_OR_RETURN(ExitStatus forked, setsid.Wait(absl::Seconds(10)));
    RETURN_IF_ERROR(Annotate(
        forked.ToStatus("setsid"),
        absl::StrCat("starting the memory server of snapshot '", tag,
                     "' (", paths.log, ")")));
    ensured.started = true;
    return absl::OkStatus();
  };
  if (!Lease::Held(paths.dir)) RETURN_IF_ERROR(start_server());
  const absl::Time deadline = absl::Now() + timeout;
  while (!(Lease::Held(paths.dir) && access(ready.c_str(), F_OK) == 0)) {
    if (!ensured.started && !Lease::Held(paths.dir)) {
      // One that was leaving has left: start the next.
      RETURN_IF_ERROR(start_server());
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the memory server of snapshot '", tag, "' did not start within ",
          absl::FormatDuration(timeout), " (", paths.log, ": ",
          Tail(paths.log), ")"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return ensured;
}

[[nodiscard]] absl::Status RemoveMemoryServerPlace(
    const std::string& state_root, const std::string& tag,
    absl::Duration timeout) {
  const MemoryServerPaths paths = MemoryServerPathsFor(state_root, tag);
  if (access(paths.dir.c_str(), F_OK) != 0) return absl::OkStatus();
  // The server decides to leave under the start lock: it is waited for
  // without holding it, then the place goes under it.
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (!Lease::Held(paths.dir)) {
      ASSIGN_OR_RETURN(UniqueFd lock, OpenStartLock(paths));
      RETURN_IF_ERROR(LockWithin(lock.get(), paths.start_lock, timeout));
      if (!Lease::Held(paths.dir)) return RemoveTree(paths.dir);
    }
    if (absl::Now() > deadline) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the memory server of '", tag, "' still runs (", paths.socket,
          "): stop it, then fcvm gc"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::vector<std::string> CollectMemoryServers(const SnapshotStore& snapshots,
                                              const std::string& state_root) {
  std::vector<std::string> removed;
  const std::string root = absl::StrCat(state_root, "/memory-servers");
  std::error_code error;
  std::vector<std::string> tags;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    tags.push_back(entry.path().filename().string());
  }
  for (const std::string& tag : tags) {
    const MemoryServerPaths paths = MemoryServerPathsFor(state_root, tag);
    absl::StatusOr<UniqueFd> lock = OpenStartLock(paths);
    if (!lock.ok() || flock(lock->get(), LOCK_EX | LOCK_NB) != 0) continue;
    absl::StatusOr<std::optional<Lease>> lease = Lease::TryTake(paths.dir);
    if (lease.ok() && !lease->has_value()) continue;  // It runs.
    if (absl::IsNotFound(snapshots.Read(tag).status())) {
      if (RemoveTree(paths.dir).ok()) removed.push_back(paths.dir);
      continue;
    }
    // A killed server's socket: nobody listens on it.
    if (unlink(paths.socket.c_str()) == 0) removed.push_back(paths.socket);
    unlink(absl::StrCat(paths.dir, "/", kReadyFile).c_str());
  }
  return removed;
}

}  // namespace fcvm::runner
