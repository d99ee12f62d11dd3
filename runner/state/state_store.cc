#include "runner/state/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::runner {
namespace {

constexpr char kStateFile[] = "state.pb";
constexpr char kLockFile[] = "lock";

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("mkdir ", path));
  }
  return absl::OkStatus();
}

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

}  // namespace

absl::Status ValidateVmName(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 40 &&
                  absl::ascii_isalnum(name[0]) &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return absl::ascii_islower(c) || absl::ascii_isdigit(c) ||
                           c == '-' || c == '_';
                  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "bad VM name '", name,
      "': use 1 to 40 of a-z, 0-9, '-' and '_', starting with a letter or "
      "digit"));
}

std::string StateStore::DefaultRoot() {
  if (const char* dir = std::getenv("FCVM_STATE_DIR"); dir && *dir) return dir;
  if (geteuid() == 0) return "/run/fcvm";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR");
      runtime && *runtime) {
    return absl::StrCat(runtime, "/fcvm");
  }
  return absl::StrCat("/tmp/fcvm-", geteuid());
}

std::string StateStore::VmDir(const std::string& name) const {
  return absl::StrCat(root_, "/vms/", name);
}

absl::Status StateStore::Create(VmState& state) {
  RETURN_IF_ERROR(ValidateVmName(state.name()));
  RETURN_IF_ERROR(MakeDir(root_, 0700));
  RETURN_IF_ERROR(MakeDir(absl::StrCat(root_, "/vms"), 0700));
  const std::string dir = VmDir(state.name());
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("a VM named '", state.name(), "' already exists (", dir,
                       "); `fcvm rm ", state.name(), "` removes it"));
    }
    return ErrnoStatus(absl::StrCat("mkdir ", dir));
  }
  state.set_dir(dir);
  ASSIGN_OR_RETURN(UniqueFd lock, Lock(state.name()));
  return Write(state);
}

absl::StatusOr<UniqueFd> StateStore::Lock(const std::string& name) const {
  const std::string path = absl::StrCat(VmDir(name), "/", kLockFile);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDWR | O_CREAT, 0600));
  if (flock(fd.get(), LOCK_EX) != 0) {
    return ErrnoStatus(absl::StrCat("flock ", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> StateStore::LockRoot() {
  RETURN_IF_ERROR(MakeDir(root_, 0700));
  const std::string path = absl::StrCat(root_, "/", kLockFile);
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (flock(fd.get(), LOCK_EX) != 0) {
    return ErrnoStatus(absl::StrCat("flock ", path));
  }
  return fd;
}

absl::Status StateStore::Write(const VmState& state) const {
  std::string bytes;
  if (!state.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrCat("VM '", state.name(), "': state does not serialise"));
  }
  return WriteFileAtomically(absl::StrCat(VmDir(state.name()), "/", kStateFile),
                             bytes, 0600);
}

absl::StatusOr<VmState> StateStore::Read(const std::string& name) const {
  RETURN_IF_ERROR(ValidateVmName(name));
  const std::string path = absl::StrCat(VmDir(name), "/", kStateFile);
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    if (absl::IsNotFound(bytes.status())) {
      return absl::NotFoundError(absl::StrCat("no VM named '", name, "'"));
    }
    return bytes.status();
  }
  VmState state;
  if (!state.ParseFromString(*bytes)) {
    return absl::DataLossError(
        absl::StrCat("VM '", name, "': ", path, " is not a state file"));
  }
  return state;
}

absl::StatusOr<VmState> StateStore::Update(
    const std::string& name, const std::function<void(VmState&)>& change) {
  RETURN_IF_ERROR(ValidateVmName(name));
  if (access(VmDir(name).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no VM named '", name, "'"));
  }
  ASSIGN_OR_RETURN(UniqueFd lock, Lock(name));
  ASSIGN_OR_RETURN(VmState state, Read(name));
  change(state);
  RETURN_IF_ERROR(Write(state));
  return state;
}

absl::StatusOr<std::vector<VmState>> StateStore::List() const {
  std::vector<VmState> states;
  const std::string vms = absl::StrCat(root_, "/vms");
  DIR* dir = opendir(vms.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return states;  // No VM ever ran.
    return ErrnoStatus(absl::StrCat("opendir ", vms));
  }
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    absl::StatusOr<VmState> state = Read(name);
    if (state.ok()) {
      states.push_back(std::move(*state));
      continue;
    }
    // Half-created, or damaged: show it, so `rm`/`gc` can be pointed at it.
    VmState broken;
    broken.set_name(name);
    broken.set_dir(VmDir(name));
    broken.set_phase(VmState::FAILED);
    broken.set_error(std::string(state.status().message()));
    states.push_back(std::move(broken));
  }
  closedir(dir);
  std::sort(
      states.begin(), states.end(),
      [](const VmState& a, const VmState& b) { return a.name() < b.name(); });
  return states;
}

absl::Status StateStore::Remove(const std::string& name) {
  RETURN_IF_ERROR(ValidateVmName(name));
  const std::string dir = VmDir(name);
  if (access(dir.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no VM named '", name, "'"));
  }
  if (nftw(dir.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    return ErrnoStatus(absl::StrCat("removing ", dir));
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner
