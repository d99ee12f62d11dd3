#ifndef FCVM_AGENT_PODMAN_H_
#define FCVM_AGENT_PODMAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/plan.pb.h"

namespace fcvm::agent {

// The Podman command lines the agent runs for a plan. Pure functions, so
// every plan field's effect is unit-tested without Podman.

// One workload per VM, always under this name.
inline constexpr char kContainerName[] = "fcvm-workload";

// Block-device volumes are mounted here (then bound into the container).
inline constexpr char kVolumeMountRoot[] = "/run/fcvm/volumes";

// A baked root filesystem (plan.rootfs) is mounted read-only at
// kRootfsImageMount; the container runs on an overlay of it at
// kRootfsMountPoint whose upper layer is on the VM's writable disk (beside
// Podman's storage, as an image's container layer would be), so what the
// container writes is bounded by that disk, not by the VM's RAM.
inline constexpr char kRootfsImageMount[] = "/run/fcvm/image";
inline constexpr char kRootfsLayerDir[] = "/var/lib/containers/fcvm-rootfs";
inline constexpr char kRootfsMountPoint[] = "/run/fcvm/rootfs";

// The archive of an "oci-archive:/dev/vdc" image, or "" for a registry
// reference.
std::string OciArchivePath(const Plan& plan);

// The drive of a "rootfs:/dev/vdc" image (a baked root filesystem), or "".
std::string RootfsDevice(const Plan& plan);

// podman load -q -i <archive>
std::vector<std::string> PodmanLoadArgv(absl::string_view archive);

// The name `podman load` printed: "Loaded image: NAME" or
// "Loaded image(s): NAME[,NAME...]" (the first), or the image ID when the
// archive names none.
[[nodiscard]] absl::StatusOr<std::string> LoadedImage(absl::string_view output);

// Where the agent puts volume `index` in the VM before binding it in: a
// block device's mount point, or the plan's directory.
std::string VolumeHostPath(const VolumeMount& volume, int index);

// podman run for `plan`, running `image` (the loaded name, or the plan's
// registry reference). In the foreground (the agent streams its output and
// gets the exit code), with the VM's network and hostname (a VM port is the
// container's port; a clone's new hostname reaches the container), and
// --sdnotify=conmon so Podman tells the agent when the container started.
// Restart policy is the agent's, not Podman's: it reports every restart.
// With plan.rootfs, `image` is the writable overlay on that root
// filesystem (kRootfsMountPoint): it runs as `--rootfs <image>`, with the
// image's config as flags, which the plan's own fields override as they
// would an image's config.
std::vector<std::string> PodmanRunArgv(const Plan& plan,
                                       absl::string_view image,
                                       bool pull_never);

// podman start --attach: a restart of the stopped workload.
std::vector<std::string> PodmanRestartArgv();

// podman stop -t SECONDS: SIGTERM, then SIGKILL after the grace time.
std::vector<std::string> PodmanStopArgv(absl::Duration grace);

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_PODMAN_H_
