#include "runner/state/state_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::runner {
namespace {

constexpr char kStateFile[] = "state.pb";
constexpr char kLockFile[] = "lock";
constexpr char kClaimPrefix[] = ".claim-";

}  // namespace

[[nodiscard]] absl::Status ValidateVmName(const std::string& name) {
  const bool ok =
      !name.empty() && name.size() <= 40 && absl::ascii_isalnum(name.front()) &&
      name.back() != '-' && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "bad VM name '", name,
      "': use 1 to 40 of a-z, 0-9 and '-', starting with a letter or digit "
      "and not ending with '-' (it is the guest's hostname)"));
}

[[nodiscard]] absl::Status EnsurePrivateDir(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus(absl::StrCat("lstat ", path));
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("mkdir ", path));
    }
    if (lstat(path.c_str(), &st) != 0) {
      return ErrnoStatus(absl::StrCat("lstat ", path));
    }
  }
  const std::string refuse =
      absl::StrCat("state directory ", path, " is not safe to use: ");
  const std::string why =
      "; another user could read the VMs' plans or plant state that fcvm "
      "would act on. Remove it, or give --state_dir a directory of your own "
      "with mode 0700";
  if (S_ISLNK(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat(refuse, "it is a symlink", why));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(refuse, "it is not a directory"));
  }
  if (st.st_uid != geteuid()) {
    return absl::PermissionDeniedError(
        absl::StrCat(refuse, "it belongs to uid ", st.st_uid,
                     ", not to you (uid ", geteuid(), ")", why));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    return absl::PermissionDeniedError(absl::StrCat(
        refuse, "its mode is ", mode, " (group or others have access)", why));
  }
  return absl::OkStatus();
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

[[nodiscard]] absl::Status StateStore::CheckRoot(bool create) const {
  const std::string vms = absl::StrCat(root_, "/vms");
  if (!create && access(root_.c_str(), F_OK) != 0 && errno == ENOENT) {
    return absl::OkStatus();  // Nothing was ever stored: nothing to trust.
  }
  RETURN_IF_ERROR(EnsurePrivateDir(root_));
  return EnsurePrivateDir(vms);
}

[[nodiscard]] absl::StatusOr<Lease> StateStore::Create(VmState& state) {
  RETURN_IF_ERROR(ValidateVmName(state.name()));
  RETURN_IF_ERROR(CheckRoot(/*create=*/true));
  const std::string dir = VmDir(state.name());
  std::string claim = absl::StrCat(root_, "/vms/", kClaimPrefix, "XXXXXX");
  if (mkdtemp(claim.data()) == nullptr) {
    return ErrnoStatus(absl::StrCat("mkdtemp ", claim));
  }
  auto abandon = [&](const absl::Status& status) {
    (void)RemoveTree(claim);
    return status;
  };
  absl::StatusOr<Lease> lease = Lease::Create(claim, dir);
  if (!lease.ok()) return abandon(lease.status());
  absl::StatusOr<UniqueFd> lock =
      OpenFd(absl::StrCat(claim, "/", kLockFile), O_RDWR | O_CREAT, 0600);
  if (!lock.ok()) return abandon(lock.status());
  state.set_dir(dir);
  if (absl::Status written = Write(claim, state); !written.ok()) {
    return abandon(written);
  }
  // RENAME_NOREPLACE: a VM of this name (or anything else there) stays.
  if (renameat2(AT_FDCWD, claim.c_str(), AT_FDCWD, dir.c_str(),
                RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return abandon(absl::AlreadyExistsError(
          absl::StrCat("a VM named '", state.name(), "' already exists (", dir,
                       "); `fcvm rm ", state.name(), "` removes it")));
    }
    return abandon(ErrnoStatus(absl::StrCat("rename ", claim, " to ", dir)));
  }
  return lease;
}

[[nodiscard]] absl::StatusOr<UniqueFd> StateStore::Lock(
    const std::string& name) const {
  const std::string path = absl::StrCat(VmDir(name), "/", kLockFile);
  // No O_CREAT: a directory being removed must not get files back.
  absl::StatusOr<UniqueFd> fd = OpenFd(path, O_RDWR);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) {
      return absl::NotFoundError(absl::StrCat("no VM named '", name, "'"));
    }
    return fd.status();
  }
  while (flock(fd->get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoStatus(absl::StrCat("flock ", path));
  }
  return fd;
}

[[nodiscard]] absl::StatusOr<UniqueFd> StateStore::LockRoot() {
  RETURN_IF_ERROR(CheckRoot(/*create=*/true));
  const std::string path = absl::StrCat(root_, "/", kLockFile);
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenFd(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoStatus(absl::StrCat("flock ", path));
  }
  return fd;
}

[[nodiscard]] absl::Status StateStore::Write(const std::string& dir,
                                             const VmState& state) const {
  std::string bytes;
  if (!state.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrCat("VM '", state.name(), "': state does not serialise"));
  }
  return WriteFileAtomically(absl::StrCat(dir, "/", kStateFile), bytes, 0600);
}

[[nodiscard]] absl::StatusOr<VmState> StateStore::Read(
    const std::string& name) const {
  RETURN_IF_ERROR(ValidateVmName(name));
  RETURN_IF_ERROR(CheckRoot(/*create=*/false));
  return ReadChecked(name);
}

absl::StatusOr<VmState> StateStore::ReadChecked(const std::string& name) const {
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

[[nodiscard]] absl::StatusOr<VmState> StateStore::Update(
    const std::string& name, const std::function<void(VmState&)>& change) {
  RETURN_IF_ERROR(ValidateVmName(name));
  RETURN_IF_ERROR(CheckRoot(/*create=*/false));
  ASSIGN_OR_RETURN(UniqueFd lock, Lock(name));
  ASSIGN_OR_RETURN(VmState state, ReadChecked(name));
  change(state);
  RETURN_IF_ERROR(Write(VmDir(name), state));
  return state;
}

[[nodiscard]] absl::StatusOr<std::vector<StoreEntry>> StateStore::List() const {
  RETURN_IF_ERROR(CheckRoot(/*create=*/false));
  std::vector<StoreEntry> entries;
  const std::string vms = absl::StrCat(root_, "/vms");
  std::error_code error;
  std::filesystem::directory_iterator it(vms, error);
  if (error) {
    if (error == std::errc::no_such_file_or_directory) return entries;
    return absl::InternalError(
        absl::StrCat("listing ", vms, ": ", error.message()));
  }
  // Names sorted first: sorting the read states would move every message
  // some log2(N) times (a quarter of `ls`'s time over 1000 VMs).
  std::vector<std::string> names;
  for (const std::filesystem::directory_entry& entry : it) {
    std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, ".")) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  entries.reserve(names.size());
  for (std::string& name : names) {
    // The root was checked once above; a name the store would never make
    // is reported as such.
    absl::Status valid = ValidateVmName(name);
    absl::StatusOr<VmState> state =
        valid.ok() ? ReadChecked(name) : absl::StatusOr<VmState>(valid);
    std::string dir = VmDir(name);
    entries.push_back({std::move(name), std::move(dir), std::move(state)});
  }
  return entries;
}

[[nodiscard]] absl::Status StateStore::Remove(const std::string& name,
                                              const Lease& lease) {
  if (lease.dir() != VmDir(name)) {
    return absl::InternalError(absl::StrCat(
        "removing VM '", name, "' with the lease of ", lease.dir()));
  }
  RETURN_IF_ERROR(CheckRoot(/*create=*/false));
  return RemoveTree(VmDir(name));
}

[[nodiscard]] absl::StatusOr<std::string> StateStore::Quarantine(
    const std::string& name, const Lease& lease) {
  if (lease.dir() != VmDir(name)) {
    return absl::InternalError(absl::StrCat(
        "quarantining VM '", name, "' with the lease of ", lease.dir()));
  }
  const std::string quarantine = absl::StrCat(root_, "/quarantine");
  RETURN_IF_ERROR(EnsurePrivateDir(quarantine));
  const std::string to =
      absl::StrCat(quarantine, "/", name, ".", absl::ToUnixMillis(absl::Now()));
  if (renameat2(AT_FDCWD, VmDir(name).c_str(), AT_FDCWD, to.c_str(),
                RENAME_NOREPLACE) != 0) {
    return ErrnoStatus(absl::StrCat("moving ", VmDir(name), " to ", to));
  }
  return to;
}

}  // namespace fcvm::runner
