#include "rootfs/image/build_oci.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "rootfs/image/oci_archive.h"
#include "rootfs/image/tar_layer.h"

namespace fcvm::rootfs {
namespace {

// OCI names CPUs as Go does; Debian does too, Alpine does not.
std::string OciArchitecture(const std::string& arch) {
  if (arch == "x86_64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return arch;
}

[[nodiscard]] absl::StatusOr<AssembleReport> Build(
    const AssembleOptions& options) {
  const ImageDefinition& definition = options.definition;
  ASSIGN_OR_RETURN(PreparedImage prepared, PrepareImage(options));
  const std::string layer_path = options.output + ".layer.tmp";
  // The layer is scratch: gone however this returns.
  absl::Cleanup remove_layer = [&layer_path] { unlink(layer_path.c_str()); };
  {
    ASSIGN_OR_RETURN(
        std::unique_ptr<TarLayer> layer,
        TarLayer::Create(layer_path, definition.source_date_epoch()));
    RETURN_IF_ERROR(FillImage(options, prepared, *layer));
    RETURN_IF_ERROR(layer->Finish());
  }
  OciArchiveOptions oci;
  oci.layer = layer_path;
  oci.architecture = OciArchitecture(options.lock.architecture());
  oci.config = definition.oci().config();
  oci.ref_name = definition.oci().ref_name().empty()
                     ? absl::StrCat("fcvm/", definition.name(), ":latest")
                     : definition.oci().ref_name();
  oci.timestamp = definition.source_date_epoch();
  oci.output = options.output;
  ASSIGN_OR_RETURN(OciArchiveReport written, WriteOciArchive(oci));
  AssembleReport report;
  report.packages = prepared.packages.size();
  report.packages_with_scripts = prepared.packages_with_scripts;
  report.uuid = written.manifest_digest;
  struct stat st;
  if (stat(options.output.c_str(), &st) == 0) report.size_bytes = st.st_size;
  return report;
}

}  // namespace

[[nodiscard]] absl::StatusOr<AssembleReport> BuildOciImage(
    const AssembleOptions& options) {
  return Annotate(Build(options),
                  absl::StrCat("building image '", options.definition.name(),
                               "' into ", options.output));
}

}  // namespace fcvm::rootfs
