#include "runner/vm/host_facts.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/free_port.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "runner/state/state_store.h"
#include "runner/storage/oci_image.h"
#include "runner/vm/backends.h"
#include "runner/vmm/firecracker/probe.h"
#include "runner/vmm/kvm.h"
#include "runner/vmm/qemu/probe.h"

namespace fcvm::runner {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

[[nodiscard]] absl::StatusOr<std::string> RandomBytes(
    const RandomSource& random, size_t count) {
  std::string bytes(count, '\0');
  size_t got = 0;
  while (got < count) {
    const ssize_t n = random ? random(bytes.data() + got, count - got)
                             : getrandom(bytes.data() + got, count - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return ErrnoStatus(
          "getrandom: no random bytes for the VM's id, "
          "machine-id and entropy");
    }
    got += static_cast<size_t>(n);
  }
  return bytes;
}

VolumeFact Stat(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return {VolumeKind::kMissing, strerror(errno)};
  if (S_ISDIR(st.st_mode)) return {VolumeKind::kDirectory, ""};
  if (S_ISREG(st.st_mode)) return {VolumeKind::kFile, ""};
  if (S_ISBLK(st.st_mode)) return {VolumeKind::kBlockDevice, ""};
  return {VolumeKind::kOther, ""};
}

}  // namespace

std::vector<std::string> HostNameservers(const std::string& resolv_conf) {
  std::vector<std::string> servers;
  for (absl::string_view line : absl::StrSplit(resolv_conf, '\n')) {
    std::vector<std::string> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.size() >= 2 && words[0] == "nameserver" &&
        !absl::StartsWith(words[1], "127.") &&
        words[1].find(':') == std::string::npos) {
      servers.push_back(words[1]);
    }
  }
  return servers;
}

[[nodiscard]] absl::StatusOr<LaunchSeeds> DrawSeeds(
    const RandomSource& random) {
  LaunchSeeds seeds;
  ASSIGN_OR_RETURN(std::string id, RandomBytes(random, 8));
  ASSIGN_OR_RETURN(std::string suffix, RandomBytes(random, 2));
  ASSIGN_OR_RETURN(std::string machine_id, RandomBytes(random, 16));
  ASSIGN_OR_RETURN(seeds.entropy, RandomBytes(random, 32));
  seeds.id = absl::BytesToHexString(id);
  seeds.name_suffix = absl::BytesToHexString(suffix);
  seeds.machine_id = absl::BytesToHexString(machine_id);
  seeds.now_unix_ms = absl::ToUnixMillis(absl::Now());
  return seeds;
}

[[nodiscard]] absl::StatusOr<HostFacts> GatherHostFacts(
    const RunFlags& flags, const FactsRequest& request) {
  HostFacts facts;
  facts.host_arch = HostArch();
  facts.guest_arch =
      request.assets.arch.empty() ? facts.host_arch : request.assets.arch;
  facts.euid = geteuid();
  facts.state_root = request.state_root;
  facts.kernel = request.assets.kernel;
  facts.rootfs = request.assets.rootfs;
  facts.assets = request.assets.source;
  for (const std::string& asset : {facts.kernel, facts.rootfs}) {
    if (!asset.empty() && !IsFile(asset)) {
      return absl::NotFoundError(absl::StrCat("no such file: ", asset));
    }
  }

  // The image: one the pipeline built (baked as a root filesystem, or as
  // an OCI archive), or an archive file the user named.
  const auto local = request.assets.oci.find(flags.image);
  const auto baked = request.assets.image_rootfs.find(flags.image);
  if (baked != request.assets.image_rootfs.end()) {
    if (local == request.assets.oci.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--image-rootfs ", flags.image, "=", baked->second,
          ": its config comes from the image's OCI archive: give --oci ",
          flags.image, "=ARCHIVE too"));
    }
    if (!IsFile(baked->second)) {
      return absl::NotFoundError(absl::StrCat("no such file: ", baked->second));
    }
    facts.image_rootfs = baked->second;
    ASSIGN_OR_RETURN(facts.image_config, ImageConfig(local->second));
    if (request.note) {
      request.note(absl::StrCat("image ", flags.image, ": baked rootfs ",
                                facts.image_rootfs, " (config from ",
                                local->second, ")"));
    }
  } else if (local != request.assets.oci.end()) {
    facts.image_archive = local->second;
  } else if (const std::string path = request.resolve(flags.image);
             absl::StrContains(flags.image, "/") && IsFile(path)) {
    facts.image_archive = path;
  }
  if (!facts.image_archive.empty() && request.note) {
    request.note(absl::StrCat("image ", flags.image, ": OCI archive ",
                              facts.image_archive, " (podman load)"));
  }
  if (flags.ports.empty() && flags.network != "none") {
    if (!facts.image_rootfs.empty()) {
      ASSIGN_OR_RETURN(facts.exposed_ports,
                       ExposedPorts(facts.image_config, local->second));
    } else if (!facts.image_archive.empty()) {
      ASSIGN_OR_RETURN(facts.exposed_ports, ExposedPorts(facts.image_archive));
    }
    for (const PublishedPort& port : facts.exposed_ports) {
      absl::StatusOr<uint16_t> free = FreeLoopbackPort(
          static_cast<uint16_t>(port.guest_port()), port.protocol() == "udp");
      if (free.ok()) facts.free_host_ports[port.guest_port()] = *free;
    }
  }

  facts.qemu = InPath(absl::StrCat("qemu-system-", facts.guest_arch));
  const std::string fc =
      request.firecracker.empty() ? "firecracker" : request.firecracker;
  if (absl::StatusOr<std::string> found = FindProgram(fc); found.ok()) {
    facts.firecracker = *found;
  }
  facts.pasta = InPath("pasta");
  facts.slirp4netns = InPath("slirp4netns");
  if (absl::StatusOr<std::string> conf = ReadFile("/etc/resolv.conf");
      conf.ok()) {
    facts.nameservers = HostNameservers(*conf);
  }
  for (const VolumeFlag& volume : flags.volumes) {
    facts.volumes[volume.host_path] = Stat(volume.host_path);
  }

  // KVM, where it can matter. Verdicts are remembered in the state root.
  const bool probe_cache = EnsurePrivateDir(request.state_root).ok();
  const std::string cache = probe_cache ? request.state_root : "";
  if (facts.qemu && flags.backend != kFirecracker && flags.accel == "auto") {
    const std::string arch = facts.guest_arch, kernel = facts.kernel;
    absl::StatusOr<std::string> binary =
        FindProgram(absl::StrCat("qemu-system-", arch));
    facts.kvm_qemu = CheckKvm(
        {arch, kernel, "qemu", binary.value_or(""), cache,
         [arch, kernel] { return qemu::ProbeKvmWithQemu(arch, kernel); }});
  }
  if (!facts.firecracker.empty() && flags.backend != kQemu) {
    const std::string arch = facts.guest_arch, kernel = facts.kernel,
                      binary = facts.firecracker, scratch = cache;
    facts.kvm_firecracker =
        CheckKvm({arch, kernel, "firecracker", binary, cache,
                  [binary, arch, kernel, scratch] {
                    return firecracker::ProbeKvmWithFirecracker(
                        binary, arch, kernel, scratch);
                  }});
  }
  return facts;
}

}  // namespace fcvm::runner
