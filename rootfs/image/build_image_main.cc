// Builds an ext4 root filesystem image (build_ext4.h) or an OCI container
// image archive (build_oci.h, --format=oci) from an image definition, its
// lockfile and the locked .deb archives. Bazel's rootfs_image rule
// (rootfs/image/image.bzl) runs it; by hand (one command line):
//   build_image --definition=images/base/image.textproto
//     --lock=images/base/amd64.lock --debs_dir=<dir of NAME.deb>
//     --extra=/sbin/fcvm-init=<static init>:0755 --output=base.ext4
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "rootfs/image/assemble.h"
#include "rootfs/image/build_ext4.h"
#include "rootfs/image/build_oci.h"
#include "rootfs/image/definition.h"

ABSL_FLAG(std::string, definition, "", "image.textproto of the image");
ABSL_FLAG(std::string, lock, "", "the lockfile for one architecture");
ABSL_FLAG(std::string, debs_dir, "",
          "directory holding NAME.deb for every locked package");
ABSL_FLAG(std::vector<std::string>, extra, {},
          "files from the build: IMAGE_PATH=HOST_PATH[:OCTAL_MODE], "
          "comma-separated");
ABSL_FLAG(std::string, output, "", "the image to write");
ABSL_FLAG(std::string, format, "ext4",
          "ext4 (a VM root filesystem) or oci (a container image archive)");

namespace fcvm::rootfs {
namespace {

[[nodiscard]] absl::StatusOr<ExtraFile> ParseExtra(const std::string& flag) {
  std::vector<std::string> kv = absl::StrSplit(flag, absl::MaxSplits('=', 1));
  if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--extra '", flag, "': expected IMAGE_PATH=HOST_PATH[:OCTAL_MODE]"));
  }
  ExtraFile file{.path = kv[0], .source = kv[1]};
  const size_t colon = kv[1].rfind(':');
  if (colon != std::string::npos) {
    file.source = kv[1].substr(0, colon);
    if (!absl::numbers_internal::safe_strtou32_base(kv[1].substr(colon + 1),
                                                    &file.mode, 8) ||
        file.mode > 07777) {
      return absl::InvalidArgumentError(
          absl::StrCat("--extra '", flag, "': bad octal mode"));
    }
  }
  return file;
}

[[nodiscard]] absl::Status Run() {
  for (const char* name : {"definition", "lock", "debs_dir", "output"}) {
    const std::string value =
        name == std::string("definition") ? absl::GetFlag(FLAGS_definition)
        : name == std::string("lock")     ? absl::GetFlag(FLAGS_lock)
        : name == std::string("debs_dir") ? absl::GetFlag(FLAGS_debs_dir)
                                          : absl::GetFlag(FLAGS_output);
    if (value.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " is required"));
  }
  AssembleOptions options;
  const std::string definition = absl::GetFlag(FLAGS_definition);
  ASSIGN_OR_RETURN(options.definition, ReadImageDefinition(definition));
  const size_t slash = definition.rfind('/');
  options.definition_dir =
      slash == std::string::npos ? "." : definition.substr(0, slash);
  ASSIGN_OR_RETURN(std::string json, ReadFile(absl::GetFlag(FLAGS_lock)));
  ASSIGN_OR_RETURN(options.lock,
                   Annotate(LockfileFromJson(json), absl::GetFlag(FLAGS_lock)));
  // The reproducible-builds convention overrides the definition's time.
  const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
  if (epoch != nullptr && *epoch != '\0') {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(epoch, &seconds) || seconds < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SOURCE_DATE_EPOCH '", epoch, "' is not a number of seconds"));
    }
    options.definition.set_source_date_epoch(seconds);
  }
  options.debs_dir = absl::GetFlag(FLAGS_debs_dir);
  for (const std::string& flag : absl::GetFlag(FLAGS_extra)) {
    ASSIGN_OR_RETURN(ExtraFile file, ParseExtra(flag));
    options.extra_files.push_back(std::move(file));
  }
  options.output = absl::GetFlag(FLAGS_output);
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "ext4" && format != "oci") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format '", format, "': expected ext4 or oci"));
  }
  ASSIGN_OR_RETURN(AssembleReport report, format == "oci"
                                              ? BuildOciImage(options)
                                              : BuildExt4Image(options));
  if (format == "oci") {
    std::cerr << options.output << ": OCI image '" << options.definition.name()
              << "' (" << options.lock.architecture() << "), "
              << report.packages << " packages, " << report.size_bytes
              << " bytes, manifest " << report.uuid << "\n";
    return absl::OkStatus();
  }
  std::cerr << options.output << ": image '" << options.definition.name()
            << "' (" << options.lock.architecture() << "), " << report.packages
            << " packages (" << report.packages_with_scripts
            << " with maintainer scripts, replaced by fix-ups), "
            << (report.size_bytes >> 20) << " MiB, "
            << (report.blocks_used * 4096 >> 20) << " MiB used, UUID "
            << report.uuid << "...\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace fcvm::rootfs

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Builds an ext4 image or an OCI archive from an image definition and "
      "its locked packages.");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = fcvm::rootfs::Run();
  if (!status.ok()) {
    std::cerr << "build_image: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
