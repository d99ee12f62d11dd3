#include "rootfs/image/definition.h"

#include <cstdlib>
#include <string>

#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

std::string TestFile(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(ReadImageDefinitionTest, ReadsTextFormat) {
  const std::string path = TestFile("image.textproto");
  ASSERT_TRUE(WriteFileAtomically(path,
                                  "name: \"tiny\"\n"
                                  "architectures: [\"amd64\", \"arm64\"]\n"
                                  "packages: \"podman\"\n"
                                  "source_date_epoch: 1700000000\n")
                  .ok());
  absl::StatusOr<ImageDefinition> image = ReadImageDefinition(path);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->name(), "tiny");
  ASSERT_EQ(image->architectures_size(), 2);
  EXPECT_EQ(image->architectures(1), "arm64");
  ASSERT_EQ(image->packages_size(), 1);
  EXPECT_EQ(image->packages(0), "podman");
  EXPECT_EQ(image->source_date_epoch(), 1700000000);
}

TEST(ReadImageDefinitionTest, MalformedNamesTheFileAndSchema) {
  const std::string path = TestFile("bad.textproto");
  ASSERT_TRUE(
      WriteFileAtomically(path, "name: \"x\"\nno_such_field: 1\n").ok());
  absl::StatusOr<ImageDefinition> image = ReadImageDefinition(path);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(image.status().message()),
              HasSubstr(path + ": not a valid ImageDefinition "
                               "(rootfs/image/image.proto)"));
}

TEST(ReadImageDefinitionTest, MissingFileIsAnError) {
  absl::StatusOr<ImageDefinition> image =
      ReadImageDefinition(TestFile("absent.textproto"));
  EXPECT_EQ(image.status().code(), absl::StatusCode::kNotFound);
}

TEST(LockfileJsonTest, RoundTripsWithSchemaFieldNames) {
  Lockfile lock;
  lock.set_image("tiny");
  lock.set_architecture("amd64");
  LockedPackage* p = lock.add_packages();
  p->set_name("podman");
  p->set_version("4.3.1+ds1-8+deb12u1");
  p->set_mirror("debian");
  p->set_path("pool/main/p/podman/podman_4.3.1_amd64.deb");
  p->set_size(12345678901);
  p->set_sha256(std::string(64, 'a'));
  absl::StatusOr<std::string> json = LockfileToJson(lock);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"architecture\": \"amd64\""));
  // uint64 maps to a JSON string in protobuf's mapping.
  EXPECT_THAT(*json, HasSubstr("\"size\": \"12345678901\""));
  absl::StatusOr<Lockfile> parsed = LockfileFromJson(*json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), lock.SerializeAsString());
}

TEST(LockfileJsonTest, RejectsUnknownFields) {
  absl::StatusOr<Lockfile> lock = LockfileFromJson(
      R"({"image": "x", "packages": [{"name": "a", "sha": "b"}]})");
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(lock.status().message()),
              HasSubstr("malformed lockfile"));
  EXPECT_THAT(std::string(lock.status().message()), HasSubstr("sha"));
}

}  // namespace
}  // namespace fcvm::rootfs
