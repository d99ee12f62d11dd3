#include "rootfs/image/oci_archive.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "rootfs/image/tar_layer.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using testing::IsOkAndHolds;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

template <typename Message>
Message Parse(const std::string& json) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

// Writes a one-file layer and an archive around it; returns the archive.
std::string MakeArchive(const std::string& name) {
  const std::string layer_path = Tmp(name + ".layer");
  absl::StatusOr<std::unique_ptr<TarLayer>> layer =
      TarLayer::Create(layer_path, 1735689600);
  EXPECT_TRUE(layer.ok()) << layer.status();
  if (!layer.ok()) return "";
  FileEntry index;
  index.path = "srv/www/index.html";
  index.mode = 0644;
  EXPECT_TRUE((*layer)->Add(index, "hello\n").ok());
  EXPECT_TRUE((*layer)->Finish().ok());
  OciArchiveOptions options;
  options.layer = layer_path;
  options.architecture = "arm64";
  options.config.add_cmd("/bin/busybox");
  options.config.add_cmd("httpd");
  (*options.config.mutable_exposed_ports())["8080/tcp"];
  options.ref_name = "fcvm/test:latest";
  options.timestamp = 1735689600;
  options.output = Tmp(name + ".tar");
  absl::StatusOr<OciArchiveReport> report = WriteOciArchive(options);
  EXPECT_TRUE(report.ok()) << report.status();
  return options.output;
}

// Unpacks the archive with tar and follows index -> manifest -> blobs,
// checking every digest and size, as a registry client would.
TEST(OciArchiveTest, LayoutIsConsistent) {
  const std::string archive = MakeArchive("a");
  const std::string dir = Tmp("layout");
  ASSERT_TRUE(
      RunCommand({.argv = {"mkdir", "-p", dir}}, absl::Minutes(1)).ok());
  ASSERT_TRUE(
      RunCommand({.argv = {"tar", "-xf", archive, "-C", dir}}, absl::Minutes(1))
          .ok());
  EXPECT_THAT(ReadFile(dir + "/oci-layout"),
              IsOkAndHolds("{\"imageLayoutVersion\":\"1.0.0\"}"));
  auto blob = [&](const oci::Descriptor& d) {
    EXPECT_EQ(d.digest().substr(0, 7), "sha256:");
    const std::string path =
        absl::StrCat(dir, "/blobs/sha256/", d.digest().substr(7));
    absl::StatusOr<std::string> data = ReadFile(path);
    EXPECT_TRUE(data.ok()) << path << ": " << data.status();
    if (!data.ok()) return std::string();
    EXPECT_EQ(Sha256Hex(*data), d.digest().substr(7));
    EXPECT_EQ(data->size(), d.size());
    return *data;
  };
  absl::StatusOr<std::string> index_read = ReadFile(dir + "/index.json");
  ASSERT_TRUE(index_read.ok()) << index_read.status();
  const std::string& index_json = *index_read;
  EXPECT_THAT(index_json, HasSubstr("\"schemaVersion\":2"));
  oci::Index index = Parse<oci::Index>(index_json);
  ASSERT_EQ(index.manifests_size(), 1);
  const auto& annotations = index.manifests(0).annotations();
  const auto ref_name = annotations.find("org.opencontainers.image.ref.name");
  ASSERT_NE(ref_name, annotations.end());
  EXPECT_EQ(ref_name->second, "fcvm/test:latest");
  const std::string manifest_json = blob(index.manifests(0));
  oci::Manifest manifest = Parse<oci::Manifest>(manifest_json);
  EXPECT_EQ(manifest.media_type(),
            "application/vnd.oci.image.manifest.v1+json");
  const std::string config_json = blob(manifest.config());
  // Spec field names, numbers as numbers.
  EXPECT_THAT(config_json, HasSubstr("\"Cmd\":[\"/bin/busybox\",\"httpd\"]"));
  EXPECT_THAT(config_json, HasSubstr("\"ExposedPorts\":{\"8080/tcp\":{}}"));
  EXPECT_THAT(config_json, HasSubstr("\"created\":\"2025-01-01T00:00:00Z\""));
  EXPECT_THAT(manifest_json, HasSubstr("\"size\":"));
  EXPECT_THAT(manifest_json, ::testing::Not(HasSubstr("\"size\":\"")));
  oci::ImageConfig config = Parse<oci::ImageConfig>(config_json);
  EXPECT_EQ(config.architecture(), "arm64");
  ASSERT_EQ(manifest.layers_size(), 1);
  blob(manifest.layers(0));
  ASSERT_EQ(config.rootfs().diff_ids_size(), 1);
  EXPECT_EQ(config.rootfs().diff_ids(0), manifest.layers(0).digest());
}

TEST(OciArchiveTest, SameInputsSameBytes) {
  absl::StatusOr<std::string> x = ReadFile(MakeArchive("x"));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_THAT(ReadFile(MakeArchive("y")), IsOkAndHolds(*x));
}

}  // namespace
}  // namespace fcvm::rootfs
