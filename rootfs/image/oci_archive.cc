#include "rootfs/image/oci_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::rootfs {
namespace {

constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kLayerType[] = "application/vnd.oci.image.layer.v1.tar";

[[nodiscard]] absl::StatusOr<std::string> ToJson(
    const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;  // json_name, as the spec.
  auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("OCI JSON: ", std::string(status.message())));
  }
  return json;
}

class Writer {
 public:
  Writer(const std::string& path, int64_t timestamp)
      : path_(path), timestamp_(timestamp), archive_(archive_write_new()) {
    archive_write_set_format_pax_restricted(archive_);
  }
  ~Writer() { archive_write_free(archive_); }

  [[nodiscard]] absl::Status Open() {
    if (archive_write_open_filename(archive_, path_.c_str()) != ARCHIVE_OK)
      return Error("opening");
    return absl::OkStatus();
  }
  [[nodiscard]] absl::Status Directory(const std::string& name) {
    return Header(name + "/", AE_IFDIR, 0755, 0);
  }
  [[nodiscard]] absl::Status File(const std::string& name,
                                  absl::string_view data) {
    RETURN_IF_ERROR(Header(name, AE_IFREG, 0644, data.size()));
    if (!data.empty() &&
        archive_write_data(archive_, data.data(), data.size()) !=
            static_cast<la_ssize_t>(data.size())) {
      return Error(name);
    }
    return absl::OkStatus();
  }
  // Streams a large file (the layer) without holding it in memory.
  [[nodiscard]] absl::Status FileFrom(const std::string& name,
                                      const std::string& source,
                                      uint64_t size) {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(source, O_RDONLY));
    RETURN_IF_ERROR(Header(name, AE_IFREG, 0644, size));
    std::vector<char> buffer(1 << 20);
    uint64_t copied = 0;
    for (;;) {
      ssize_t n = read(fd.get(), buffer.data(), buffer.size());
      if (n < 0) return ErrnoStatus(absl::StrCat("reading ", source));
      if (n == 0) break;
      if (archive_write_data(archive_, buffer.data(), n) != n)
        return Error(name);
      copied += n;
    }
    if (copied != size) {
      return absl::DataLossError(
          absl::StrCat(source, " changed size while being archived"));
    }
    return absl::OkStatus();
  }
  [[nodiscard]] absl::Status Close() {
    if (archive_write_close(archive_) != ARCHIVE_OK) return Error("closing");
    return absl::OkStatus();
  }

 private:
  [[nodiscard]] absl::Status Header(const std::string& name, mode_t type,
                                    mode_t perm, uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, timestamp_, 0);
    const int rc = archive_write_header(archive_, e);
    archive_entry_free(e);
    return rc == ARCHIVE_OK ? absl::OkStatus() : Error(name);
  }
  [[nodiscard]] absl::Status Error(const std::string& what) {
    return absl::InternalError(absl::StrCat("OCI archive ", path_, ": ", what,
                                            ": ",
                                            archive_error_string(archive_)));
  }

  std::string path_;
  int64_t timestamp_;
  archive* archive_;
};

}  // namespace

[[nodiscard]] absl::StatusOr<OciArchiveReport> WriteOciArchive(
    const OciArchiveOptions& options) {
  ASSIGN_OR_RETURN(std::string layer_sha, Sha256File(options.layer));
  struct stat st;
  if (stat(options.layer.c_str(), &st) != 0)
    return ErrnoStatus(absl::StrCat("stat ", options.layer));
  if (st.st_size >= (int64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", options.layer,
                     " is 4 GiB or more; too large for an fcvm image"));
  }
  const std::string layer_digest = absl::StrCat("sha256:", layer_sha);

  oci::ImageConfig config;
  config.set_created(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                      absl::FromUnixSeconds(options.timestamp),
                                      absl::UTCTimeZone()));
  config.set_architecture(options.architecture);
  config.set_os("linux");
  *config.mutable_config() = options.config;
  config.mutable_rootfs()->set_type("layers");
  // Uncompressed: the diff ID is the layer's own digest.
  config.mutable_rootfs()->add_diff_ids(layer_digest);
  ASSIGN_OR_RETURN(std::string config_json, ToJson(config));
  const std::string config_sha = Sha256Hex(config_json);

  oci::Manifest manifest;
  manifest.set_schema_version(2);
  manifest.set_media_type(kManifestType);
  manifest.mutable_config()->set_media_type(kConfigType);
  manifest.mutable_config()->set_digest(absl::StrCat("sha256:", config_sha));
  manifest.mutable_config()->set_size(config_json.size());
  oci::Descriptor* layer = manifest.add_layers();
  layer->set_media_type(kLayerType);
  layer->set_digest(layer_digest);
  layer->set_size(static_cast<uint32_t>(st.st_size));
  ASSIGN_OR_RETURN(std::string manifest_json, ToJson(manifest));
  const std::string manifest_sha = Sha256Hex(manifest_json);

  oci::Index index;
  index.set_schema_version(2);
  oci::Descriptor* entry = index.add_manifests();
  entry->set_media_type(kManifestType);
  entry->set_digest(absl::StrCat("sha256:", manifest_sha));
  entry->set_size(manifest_json.size());
  if (!options.ref_name.empty()) {
    (*entry->mutable_annotations())["org.opencontainers.image.ref.name"] =
        options.ref_name;
  }
  ASSIGN_OR_RETURN(std::string index_json, ToJson(index));

  Writer writer(options.output, options.timestamp);
  RETURN_IF_ERROR(writer.Open());
  RETURN_IF_ERROR(
      writer.File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  RETURN_IF_ERROR(writer.File("index.json", index_json));
  RETURN_IF_ERROR(writer.Directory("blobs"));
  RETURN_IF_ERROR(writer.Directory("blobs/sha256"));
  RETURN_IF_ERROR(
      writer.File(absl::StrCat("blobs/sha256/", manifest_sha), manifest_json));
  RETURN_IF_ERROR(
      writer.File(absl::StrCat("blobs/sha256/", config_sha), config_json));
  RETURN_IF_ERROR(writer.FileFrom(absl::StrCat("blobs/sha256/", layer_sha),
                                  options.layer, st.st_size));
  RETURN_IF_ERROR(writer.Close());
  return OciArchiveReport{absl::StrCat("sha256:", manifest_sha),
                          static_cast<uint64_t>(st.st_size)};
}

}  // namespace fcvm::rootfs
