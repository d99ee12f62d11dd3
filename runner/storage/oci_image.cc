#include "runner/storage/oci_image.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "rootfs/image/oci.pb.h"

namespace fcvm::runner {
namespace {

// index.json, manifests and configs are a few KiB.
constexpr int64_t kMaxMetadataBytes = 1 << 20;

struct ReaderDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// index.json and the small blobs (manifests, configs), by path.
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ReadMetadata(
    const std::string& path) {
  std::unique_ptr<archive, ReaderDeleter> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    return absl::NotFoundError(absl::StrCat("OCI archive ", path, ": ",
                                            archive_error_string(a.get())));
  }
  std::map<std::string, std::string> files;
  archive_entry* entry;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    if (absl::StartsWith(name, "./")) name = name.substr(2);
    const int64_t size = archive_entry_size(entry);
    if (name != "index.json" && !absl::StartsWith(name, "blobs/")) continue;
    // Layers are not needed here; and a size comes from the archive, so
    // nothing larger than a metadata document is ever allocated for.
    if (size < 0 || size > kMaxMetadataBytes) {
      if (name == "index.json") {
        return absl::DataLossError(
            absl::StrCat("OCI archive ", path, ": index.json is ", size,
                         " bytes (at most ", kMaxMetadataBytes, ")"));
      }
      continue;
    }
    std::string data(size, '\0');
    if (archive_read_data(a.get(), data.data(), data.size()) != size) {
      return absl::DataLossError(
          absl::StrCat("OCI archive ", path, ": cannot read ", name));
    }
    files[name] = std::move(data);
  }
  if (rc != ARCHIVE_EOF) {
    return absl::DataLossError(absl::StrCat("OCI archive ", path, ": ",
                                            archive_error_string(a.get())));
  }
  return files;
}

template <typename Message>
[[nodiscard]] absl::StatusOr<Message> Parse(
    const std::map<std::string, std::string>& files, const std::string& name,
    const std::string& archive) {
  auto it = files.find(name);
  if (it == files.end()) {
    return absl::DataLossError(
        absl::StrCat("OCI archive ", archive, ": no ", name));
  }
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // Only what we need is typed.
  if (!google::protobuf::util::JsonStringToMessage(it->second, &message,
                                                   options)
           .ok()) {
    return absl::DataLossError(
        absl::StrCat("OCI archive ", archive, ": ", name, " is malformed"));
  }
  return message;
}

std::string BlobPath(const std::string& digest) {
  return absl::StrCat("blobs/", absl::StrReplaceAll(digest, {{":", "/"}}));
}

}  // namespace

[[nodiscard]] absl::StatusOr<rootfs::oci::ContainerConfig> ImageConfig(
    const std::string& archive) {
  absl::StatusOr<std::map<std::string, std::string>> files =
      ReadMetadata(archive);
  if (!files.ok()) return files.status();
  absl::StatusOr<rootfs::oci::Index> index =
      Parse<rootfs::oci::Index>(*files, "index.json", archive);
  if (!index.ok()) return index.status();
  if (index->manifests().empty()) {
    return absl::DataLossError(
        absl::StrCat("OCI archive ", archive, ": index.json lists no image"));
  }
  absl::StatusOr<rootfs::oci::Manifest> manifest = Parse<rootfs::oci::Manifest>(
      *files, BlobPath(index->manifests(0).digest()), archive);
  if (!manifest.ok()) return manifest.status();
  absl::StatusOr<rootfs::oci::ImageConfig> config =
      Parse<rootfs::oci::ImageConfig>(
          *files, BlobPath(manifest->config().digest()), archive);
  if (!config.ok()) return config.status();
  return config->config();
}

[[nodiscard]] absl::StatusOr<std::vector<PublishedPort>> ExposedPorts(
    const std::string& archive) {
  absl::StatusOr<rootfs::oci::ContainerConfig> config = ImageConfig(archive);
  if (!config.ok()) return config.status();
  return ExposedPorts(*config, archive);
}

[[nodiscard]] absl::StatusOr<std::vector<PublishedPort>> ExposedPorts(
    const rootfs::oci::ContainerConfig& config, const std::string& archive) {
  std::vector<PublishedPort> ports;
  for (const auto& [spec, unused] : config.exposed_ports()) {
    std::vector<std::string> parts = absl::StrSplit(spec, '/');
    PublishedPort port;
    uint32_t number = 0;
    if (!absl::SimpleAtoi(parts[0], &number) || number == 0 || number > 65535) {
      return absl::DataLossError(absl::StrCat(
          "OCI archive ", archive, ": exposed port '", spec, "' is malformed"));
    }
    port.set_guest_port(number);
    port.set_protocol(parts.size() > 1 ? parts[1] : "tcp");
    ports.push_back(port);
  }
  std::sort(ports.begin(), ports.end(), [](const auto& a, const auto& b) {
    return a.guest_port() < b.guest_port();
  });
  return ports;
}

}  // namespace fcvm::runner
