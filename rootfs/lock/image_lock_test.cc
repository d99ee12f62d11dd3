#include "rootfs/lock/image_lock.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/image/definition.h"
#include "rootfs/testing/http_server.h"
#include "rootfs/testing/signing_key.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;

std::string Stanza(const std::string& name, const std::string& version,
                   const std::string& arch, const std::string& extra = "") {
  return absl::StrCat(
      "Package: ", name, "\nVersion: ", version, "\nArchitecture: ", arch, "\n",
      extra, "Filename: pool/main/", name, "_", version, "_", arch,
      ".deb\nSize: 1234\nSHA256: ", Sha256Hex(name + version), "\n\n");
}

// A Debian-shaped mirror in a directory, served over loopback HTTP, signed
// with a throwaway key:
// dists/bookworm/{InRelease,main/binary-amd64/Packages.xz}.
class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/mirror");
    std::filesystem::remove_all(root_);
    dists_ = root_ + "/debian/dists/bookworm";
    std::filesystem::create_directories(dists_ + "/main/binary-amd64");
    scratch_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/scratch");
    std::filesystem::create_directories(scratch_);
    absl::StatusOr<testing::SigningKey> key =
        testing::SigningKey::Create("test archive");
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = std::make_unique<testing::SigningKey>(*std::move(key));
    absl::StatusOr<std::unique_ptr<testing::HttpServer>> server =
        testing::HttpServer::Start(root_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    setenv("FCVM_MIRROR_DEBIAN", (server_->url() + "/debian").c_str(), 1);

    image_.set_name("tiny");
    PackageSource* source = image_.add_sources();
    source->set_mirror("debian");
    source->set_suite("bookworm");
    source->add_components("main");
    image_.add_packages("podman");
  }
  void TearDown() override { unsetenv("FCVM_MIRROR_DEBIAN"); }

  // Writes the index (xz-compressed) and a signed InRelease describing it.
  void Publish(const std::string& packages) {
    const std::string index = dists_ + "/main/binary-amd64/Packages";
    ASSERT_TRUE(WriteFileAtomically(index, packages).ok());
    ASSERT_TRUE(
        RunCommand({.argv = {"xz", "-f", "-k", index}}, absl::Seconds(60))
            .ok());
    absl::StatusOr<std::string> xz = ReadFile(index + ".xz");
    ASSERT_TRUE(xz.ok());
    std::string release = absl::StrCat(
        "Suite: stable\nCodename: bookworm\nArchitectures: amd64\n"
        "Components: main\nSHA256:\n ",
        Sha256Hex(*xz), " ", xz->size(), " main/binary-amd64/Packages.xz\n");
    ASSERT_TRUE(key_->ClearSign(release, dists_ + "/InRelease").ok());
  }
  LockOptions Options() {
    return {.keyrings = {key_->keyring()}, .scratch_dir = scratch_};
  }

  std::string root_, dists_, scratch_;
  std::unique_ptr<testing::SigningKey> key_;
  std::unique_ptr<testing::HttpServer> server_;
  ImageDefinition image_;
};

TEST_F(LockTest, LocksClosureFromVerifiedIndexes) {
  Publish(Stanza("podman", "4.3.1", "amd64",
                 "Depends: crun | runc, libc6 (>= 2.34)\n") +
          Stanza("crun", "1.8.1", "amd64", "Depends: libc6\n") +
          Stanza("libc6", "2.36-9", "amd64") +
          Stanza("libc6", "2.36-9", "arm64") +
          Stanza("unrelated", "1", "amd64"));
  absl::StatusOr<Lockfile> lock = LockImage(image_, "amd64", Options());
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->image(), "tiny");
  EXPECT_EQ(lock->architecture(), "amd64");
  ASSERT_EQ(lock->packages_size(), 3);
  EXPECT_EQ(lock->packages(0).name(), "crun");
  EXPECT_EQ(lock->packages(1).name(), "libc6");
  const LockedPackage& podman = lock->packages(2);
  EXPECT_EQ(podman.name(), "podman");
  EXPECT_EQ(podman.version(), "4.3.1");
  EXPECT_EQ(podman.mirror(), "debian");
  EXPECT_EQ(podman.path(), "pool/main/podman_4.3.1_amd64.deb");
  EXPECT_EQ(podman.size(), 1234u);
  EXPECT_EQ(podman.sha256(), Sha256Hex("podman4.3.1"));

  // The JSON is stable and round-trips; no host name is in it.
  absl::StatusOr<std::string> json = LockfileToJson(*lock);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, ::testing::Not(HasSubstr("127.0.0.1")));
  EXPECT_THAT(*json,
              HasSubstr("\"path\": \"pool/main/podman_4.3.1_amd64.deb\""));
  absl::StatusOr<Lockfile> again = LockImage(image_, "amd64", Options());
  ASSERT_TRUE(again.ok());
  absl::StatusOr<std::string> json_again = LockfileToJson(*again);
  ASSERT_TRUE(json_again.ok()) << json_again.status();
  EXPECT_EQ(*json_again, *json);
  absl::StatusOr<Lockfile> parsed = LockfileFromJson(*json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<std::string> json_parsed = LockfileToJson(*parsed);
  ASSERT_TRUE(json_parsed.ok()) << json_parsed.status();
  EXPECT_EQ(*json_parsed, *json);
}

TEST_F(LockTest, IndexNotMatchingSignedHashIsRefused) {
  Publish(Stanza("podman", "4.3.1", "amd64"));
  // Replace the index after signing: its hash no longer matches InRelease.
  const std::string index = dists_ + "/main/binary-amd64/Packages";
  ASSERT_TRUE(
      WriteFileAtomically(index, Stanza("podman", "6.6.6", "amd64")).ok());
  ASSERT_TRUE(
      RunCommand({.argv = {"xz", "-f", index}}, absl::Seconds(60)).ok());
  absl::StatusOr<Lockfile> lock = LockImage(image_, "amd64", Options());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(lock.status().message()),
              HasSubstr("locking image 'tiny' for amd64: fetching "
                        "main/binary-amd64/Packages.xz from"));
}

TEST_F(LockTest, UnsignedMirrorIsRefused) {
  Publish(Stanza("podman", "4.3.1", "amd64"));
  absl::StatusOr<testing::SigningKey> stranger =
      testing::SigningKey::Create("stranger");
  ASSERT_TRUE(stranger.ok());
  absl::StatusOr<Lockfile> lock =
      LockImage(image_, "amd64",
                {.keyrings = {stranger->keyring()}, .scratch_dir = scratch_});
  EXPECT_FALSE(lock.ok());
  EXPECT_THAT(std::string(lock.status().message()),
              HasSubstr("signature check of"));
}

TEST_F(LockTest, UnsatisfiableAndMissingArchitecture) {
  Publish(Stanza("podman", "4.3.1", "amd64", "Depends: conmon\n"));
  EXPECT_THAT(
      std::string(LockImage(image_, "amd64", Options()).status().message()),
      HasSubstr("podman depends on conmon, which nothing in the index "
                "for amd64 satisfies"));
  EXPECT_THAT(
      std::string(LockImage(image_, "arm64", Options()).status().message()),
      HasSubstr("lists no main/binary-arm64/Packages.xz"));
}

}  // namespace
}  // namespace fcvm::rootfs
