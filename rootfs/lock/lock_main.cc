// bazel run //rootfs:lock -- <image> [<image>...]
//
// Resolves images/<image>/image.textproto into images/<image>/<arch>.lock for
// each of its architectures: every package of the dependency closure with
// version, path relative to its mirror's root, size and sha256, from
// signature-checked indexes. Mirrors are found at run time (FCVM_MIRROR_*
// or the host's apt sources); no host name is written.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "base/status.h"
#include "rootfs/image/definition.h"
#include "rootfs/image/image.pb.h"
#include "rootfs/lock/image_lock.h"

ABSL_FLAG(
    std::string, workspace, "",
    "Workspace root (default: $BUILD_WORKSPACE_DIRECTORY, set by bazel run)");
ABSL_FLAG(std::vector<std::string>, keyring,
          {"/usr/share/keyrings/debian-archive-keyring.gpg"},
          "OpenPGP keyrings that may sign the mirrors' InRelease files");
ABSL_FLAG(std::string, apk_keys, "/etc/apk/keys",
          "directory of the public keys that may sign Alpine APKINDEX files");

namespace fcvm::rootfs {
namespace {

[[nodiscard]] absl::Status LockOne(const std::string& workspace,
                                   const std::string& name,
                                   const std::string& scratch) {
  const std::string dir = absl::StrCat(workspace, "/images/", name);
  const std::string definition_path = dir + "/image.textproto";
  ASSIGN_OR_RETURN(ImageDefinition image, ReadImageDefinition(definition_path));
  // images/oci/nginx is image "nginx".
  const std::string expected = name.substr(name.rfind('/') + 1);
  if (image.name() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(definition_path, ": name is '", image.name(),
                     "', expected '", expected, "'"));
  }
  for (const std::string& arch : image.architectures()) {
    ASSIGN_OR_RETURN(Lockfile lock,
                     LockImage(image, arch,
                               {.keyrings = absl::GetFlag(FLAGS_keyring),
                                .apk_keys_dir = absl::GetFlag(FLAGS_apk_keys),
                                .scratch_dir = scratch}));
    ASSIGN_OR_RETURN(std::string json, LockfileToJson(lock));
    const std::string out = absl::StrCat(dir, "/", arch, ".lock");
    RETURN_IF_ERROR(WriteFileAtomically(out, json));
    uint64_t bytes = 0;
    for (const LockedPackage& p : lock.packages()) bytes += p.size();
    std::cout << absl::StrFormat("%s: %d packages, %.1f MiB of archives\n", out,
                                 lock.packages_size(), bytes / 1048576.0);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace fcvm::rootfs

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Resolves images/<image>/image.textproto into pinned lockfiles.\n"
      "usage: bazel run //rootfs:lock -- <image> [<image>...]");
  std::vector<char*> images = absl::ParseCommandLine(argc, argv);
  images.erase(images.begin());
  std::string workspace = absl::GetFlag(FLAGS_workspace);
  if (workspace.empty() &&
      std::getenv("BUILD_WORKSPACE_DIRECTORY") != nullptr) {
    workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  }
  if (images.empty() || workspace.empty()) {
    std::cerr << absl::ProgramUsageMessage()
              << "\n(run it with bazel run, or pass --workspace)\n";
    return 2;
  }
  char scratch[] = "/tmp/fcvm-lock.XXXXXX";
  if (mkdtemp(scratch) == nullptr) {
    std::cerr << "lock: cannot create a scratch directory in /tmp\n";
    return 1;
  }
  int rc = 0;
  for (const char* image : images) {
    absl::Status status = fcvm::rootfs::LockOne(workspace, image, scratch);
    if (!status.ok()) {
      std::cerr << "lock: " << status.message() << "\n";
      rc = 1;
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
  return rc;
}
