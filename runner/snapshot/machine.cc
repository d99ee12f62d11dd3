#include "runner/snapshot/machine.h"

#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner {
namespace {

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
         st.st_mtim.tv_nsec;
}

}  // namespace

MachineDescription DescribeMachine(const VmState& state) {
  const VmSpec& spec = state.spec();
  const bool x86 = spec.arch() == "x86_64";
  const bool kvm = state.accel() == "kvm";
  MachineDescription description;
  if (state.backend() == "firecracker") {
    description.machine = "firecracker";
    description.cpu_model = "host";
  } else {
    description.machine = x86 ? "microvm" : "virt";
    description.cpu_model = kvm ? "host" : (x86 ? "qemu64" : "cortex-a57");
  }
  description.devices.push_back("serial console");
  description.devices.push_back("virtio-rng");
  for (int i = 0; i < spec.disks_size(); ++i) {
    description.devices.push_back(
        absl::StrCat("virtio-blk ", spec.disks(i).guest_device(),
                     spec.disks(i).read_only() ? " read-only" : " read-write"));
  }
  for (int i = 0; i < spec.nics_size(); ++i) {
    const Nic& nic = spec.nics(i);
    description.devices.push_back(absl::StrCat(
        "virtio-net eth", i, " ",
        nic.has_user() ? "user" : (nic.has_tap() ? "tap" : "hub")));
  }
  if (spec.vsock_cid() >= 3) description.devices.push_back("vsock");
  return description;
}

[[nodiscard]] absl::StatusOr<std::string> VmmVersion(
    const std::string& binary) {
  SubprocessOptions options;
  options.argv = {binary, "--version"};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kNull;
  ASSIGN_OR_RETURN(Subprocess::Output out,
                   RunCommand(std::move(options), absl::Seconds(10)));
  RETURN_IF_ERROR(out.exit.ToStatus(absl::StrCat(binary, " --version")));
  absl::string_view text = out.stdout_data;
  return std::string(
      absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

[[nodiscard]] absl::StatusOr<InputFile> DescribeInput(
    const std::string& role, const std::string& path,
    const std::vector<InputFile>& known) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(absl::StrCat("the ", role, " ", path));
  }
  InputFile file;
  file.set_role(role);
  file.set_path(path);
  file.set_size(static_cast<uint64_t>(st.st_size));
  file.set_mtime_ns(MtimeNs(st));
  for (const InputFile& other : known) {
    if (other.path() == path && other.size() == file.size() &&
        other.mtime_ns() == file.mtime_ns() && !other.sha256().empty()) {
      file.set_sha256(other.sha256());
      return file;
    }
  }
  ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
  file.set_sha256(sha);
  return file;
}

[[nodiscard]] absl::StatusOr<HeldFile> DescribeHeld(const std::string& dir,
                                                    const std::string& name) {
  const std::string path = absl::StrCat(dir, "/", name);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(path);
  HeldFile file;
  file.set_name(name);
  file.set_size(static_cast<uint64_t>(st.st_size));
  file.set_allocated(static_cast<uint64_t>(st.st_blocks) * 512);
  return file;
}

[[nodiscard]] HostNow ObserveHost(const SnapshotManifest& manifest,
                                  const std::string& snapshot_dir) {
  HostNow now;
  now.host_arch = HostArch();
  absl::StatusOr<std::string> version = VmmVersion(manifest.vmm_binary());
  if (version.ok()) {
    now.vmm_version = *version;
  } else {
    now.vmm_error = std::string(version.status().message());
  }
  for (const InputFile& input : manifest.inputs()) {
    struct stat st;
    if (stat(input.path().c_str(), &st) != 0) {
      now.inputs.push_back(
          ErrnoStatus(absl::StrCat("the ", input.role(), " ", input.path())));
    } else if (static_cast<uint64_t>(st.st_size) == input.size() &&
               MtimeNs(st) == input.mtime_ns()) {
      now.inputs.push_back(input);  // Unchanged since it was hashed.
    } else {
      now.inputs.push_back(DescribeInput(input.role(), input.path()));
    }
  }
  for (const HeldFile& held : manifest.files()) {
    now.files.push_back(DescribeHeld(snapshot_dir, held.name()));
  }
  return now;
}

[[nodiscard]] absl::Status CheckRestorable(const SnapshotManifest& manifest,
                                           const HostNow& now) {
  const std::string what = absl::StrCat("snapshot '", manifest.tag(), "'");
  auto differs = [&](const std::string& field, const std::string& expected,
                     const std::string& found) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": ", field, ": expected '", expected, "', found '", found, "'"));
  };
  const VmState& source = manifest.source();
  if (source.spec().arch() != manifest.arch()) {
    return differs("arch (the manifest's against its VM spec)", manifest.arch(),
                   source.spec().arch());
  }
  if (manifest.accel() == "kvm" && now.host_arch != manifest.arch()) {
    return differs("arch (a KVM snapshot runs on its own CPU)", manifest.arch(),
                   now.host_arch);
  }
  if (source.spec().memory_mib() != manifest.memory_mib()) {
    return differs("memory_mib (the manifest's against its VM spec)",
                   absl::StrCat(manifest.memory_mib()),
                   absl::StrCat(source.spec().memory_mib()));
  }
  if (source.spec().vcpus() != manifest.vcpus()) {
    return differs("vcpus (the manifest's against its VM spec)",
                   absl::StrCat(manifest.vcpus()),
                   absl::StrCat(source.spec().vcpus()));
  }
  const MachineDescription machine = DescribeMachine(source);
  if (machine.machine != manifest.machine()) {
    return differs("machine", manifest.machine(), machine.machine);
  }
  if (machine.cpu_model != manifest.cpu_model()) {
    return differs("cpu_model", manifest.cpu_model(), machine.cpu_model);
  }
  const std::vector<std::string> devices(manifest.devices().begin(),
                                         manifest.devices().end());
  if (machine.devices != devices) {
    return differs("devices", absl::StrJoin(devices, ", "),
                   absl::StrJoin(machine.devices, ", "));
  }
  if (!now.vmm_error.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": vmm_version: its VMM cannot run here (", now.vmm_error, ")"));
  }
  if (now.vmm_version != manifest.vmm_version()) {
    return differs("vmm_version", manifest.vmm_version(), now.vmm_version);
  }
  for (int i = 0; i < manifest.inputs_size(); ++i) {
    const InputFile& want = manifest.inputs(i);
    if (i >= static_cast<int>(now.inputs.size()) || !now.inputs[i].ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": inputs[", want.role(), "]: ",
                       i < static_cast<int>(now.inputs.size())
                           ? now.inputs[i].status().message()
                           : "not observed"));
    }
    if (now.inputs[i]->sha256() != want.sha256()) {
      return differs(absl::StrCat("inputs[", want.role(), "] ", want.path(),
                                  " sha256 (rebuilt since the snapshot?)"),
                     want.sha256(), now.inputs[i]->sha256());
    }
  }
  for (int i = 0; i < manifest.files_size(); ++i) {
    const HeldFile& want = manifest.files(i);
    if (i >= static_cast<int>(now.files.size()) || !now.files[i].ok()) {
      return absl::DataLossError(
          absl::StrCat(what, ": its ", want.name(), " file: ",
                       i < static_cast<int>(now.files.size())
                           ? now.files[i].status().message()
                           : "not observed"));
    }
    if (now.files[i]->size() != want.size()) {
      return absl::DataLossError(absl::StrCat(
          what, ": its ", want.name(), " file is ", now.files[i]->size(),
          " bytes, the manifest says ", want.size(),
          " (truncated or replaced: the snapshot is damaged)"));
    }
    if (want.name() == "memory" &&
        want.size() != uint64_t{manifest.memory_mib()} << 20) {
      return differs("memory_mib (against the memory file)",
                     absl::StrCat(manifest.memory_mib()),
                     absl::StrCat(want.size() >> 20));
    }
  }
  return absl::OkStatus();
}

}  // namespace fcvm::runner
