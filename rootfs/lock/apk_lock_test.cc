// Alpine end to end on a fixture mirror (no Alpine mirror is reachable
// here): a signed APKINDEX.tar.gz and .apk files served over loopback HTTP
// are locked with LockImage (signature, closure, package checks, sha256),
// then assembled into an ext4 image that e2fsck finds clean.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/image/build_ext4.h"
#include "rootfs/lock/image_lock.h"
#include "rootfs/testing/apk_fixture.h"
#include "rootfs/testing/http_server.h"
#include "rootfs/testing/status_matchers.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using testing::IsOkAndHolds;
using testing::TarItem;

std::string RunOk(const std::vector<std::string>& argv) {
  SubprocessOptions options{.argv = argv};
  options.stdout_mode = StdioMode::kPipe;
  options.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Minutes(1));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return "";
  EXPECT_TRUE(out->exit.success())
      << argv[0] << ": " << out->stdout_data << out->stderr_data;
  return out->stdout_data;
}

struct FixturePackage {
  std::string name, version, depends, provides;
  std::vector<TarItem> scripts, data;
};

class ApkLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::getenv("TEST_TMPDIR");
    root_ = tmp_ + "/mirror";
    std::filesystem::remove_all(root_);
    dir_ = root_ + "/alpine/v3.20/main/x86_64";
    std::filesystem::create_directories(dir_);
    std::filesystem::create_directories(tmp_ + "/keys");
    scratch_ = tmp_ + "/scratch";
    std::filesystem::create_directories(scratch_);
    key_ = tmp_ + "/fixture.priv";
    RunOk({"openssl", "genrsa", "-out", key_, "2048"});
    RunOk({"openssl", "rsa", "-in", key_, "-pubout", "-out",
           tmp_ + "/keys/fixture@example.org.rsa.pub"});
    absl::StatusOr<std::unique_ptr<testing::HttpServer>> server =
        testing::HttpServer::Start(root_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    setenv("FCVM_MIRROR_ALPINE", (server_->url() + "/alpine").c_str(), 1);

    image_.set_name("tiny-alpine");
    image_.set_package_format("apk");
    PackageSource* source = image_.add_sources();
    source->set_mirror("alpine");
    source->set_suite("v3.20");
    source->add_components("main");
    image_.add_architectures("x86_64");
    image_.add_packages("podman");
  }
  void TearDown() override { unsetenv("FCVM_MIRROR_ALPINE"); }

  // Writes the .apk files and a signed index listing them.
  void Publish(const std::vector<FixturePackage>& packages) {
    std::string index;
    for (const FixturePackage& p : packages) {
      std::string checksum;
      absl::StatusOr<std::string> apk = testing::MakeApk(
          absl::StrCat("pkgname = ", p.name, "\npkgver = ", p.version,
                       "\narch = x86_64\nsize = 4096\n"),
          p.scripts, p.data, &checksum);
      ASSERT_TRUE(apk.ok());
      ASSERT_TRUE(
          WriteFileAtomically(
              absl::StrCat(dir_, "/", p.name, "-", p.version, ".apk"), *apk)
              .ok());
      absl::StrAppend(&index, "C:", checksum, "\nP:", p.name, "\nV:", p.version,
                      "\nA:x86_64\nS:", apk->size(), "\nI:4096\n");
      if (!p.depends.empty()) absl::StrAppend(&index, "D:", p.depends, "\n");
      if (!p.provides.empty()) absl::StrAppend(&index, "p:", p.provides, "\n");
      absl::StrAppend(&index, "\n");
    }
    absl::StatusOr<std::string> body =
        testing::TarSegment({{.path = "APKINDEX", .data = index}}, true);
    ASSERT_TRUE(body.ok()) << body.status();
    absl::StatusOr<std::string> gzipped = testing::GzipMember(*body);
    ASSERT_TRUE(gzipped.ok()) << gzipped.status();
    const std::string payload = *gzipped;
    ASSERT_TRUE(WriteFileAtomically(tmp_ + "/payload", payload).ok());
    RunOk({"openssl", "dgst", "-sha1", "-sign", key_, "-out",
           tmp_ + "/payload.sig", tmp_ + "/payload"});
    absl::StatusOr<std::string> signature = ReadFile(tmp_ + "/payload.sig");
    ASSERT_TRUE(signature.ok()) << signature.status();
    absl::StatusOr<std::string> sign =
        testing::TarSegment({{.path = ".SIGN.RSA.fixture@example.org.rsa.pub",
                              .data = *signature}});
    ASSERT_TRUE(sign.ok()) << sign.status();
    absl::StatusOr<std::string> sign_member = testing::GzipMember(*sign);
    ASSERT_TRUE(sign_member.ok()) << sign_member.status();
    ASSERT_TRUE(
        WriteFileAtomically(dir_ + "/APKINDEX.tar.gz", *sign_member + payload)
            .ok());
  }

  std::vector<FixturePackage> Packages() {
    return {
        {.name = "musl",
         .version = "1.2.5-r0",
         .provides = "so:libc.musl-x86_64.so.1=1",
         .data = {{.path = "lib", .directory = true, .mode = 0755},
                  {.path = "lib/ld-musl-x86_64.so.1",
                   .data = "\x7f"
                           "ELF musl",
                   .mode = 0755}}},
        {.name = "busybox",
         .version = "1.36.1-r29",
         .depends = "so:libc.musl-x86_64.so.1",
         .provides = "cmd:sh=1.36.1-r29 /bin/sh",
         .scripts = {{.path = ".post-install",
                      .data = "#!/bin/sh\n",
                      .mode = 0755}},
         .data = {{.path = "bin", .directory = true, .mode = 0755},
                  {.path = "bin/busybox",
                   .data = "\x7f"
                           "ELF busybox",
                   .mode = 0755},
                  {.path = "bin/sh", .symlink = "/bin/busybox", .mode = 0777},
                  {.path = "etc/busybox-paths.d/busybox",
                   .data = "/bin/busybox\n/bin/ls\n/bin/sh\n/usr/bin/wget\n"}}},
        {.name = "podman",
         .version = "5.2.5-r0",
         .depends = "/bin/sh so:libc.musl-x86_64.so.1",
         .data = {{.path = "usr", .directory = true, .mode = 0755},
                  {.path = "usr/bin", .directory = true, .mode = 0755},
                  {.path = "usr/bin/podman",
                   .data = "\x7f"
                           "ELF podman",
                   .mode = 0755},
                  {.path = "usr/bin/newuidmap", .data = "x", .mode = 04755}}},
        {.name = "unrelated", .version = "1-r0"},
    };
  }

  LockOptions Options() {
    return {.apk_keys_dir = tmp_ + "/keys", .scratch_dir = scratch_};
  }

  std::string tmp_, root_, dir_, scratch_, key_;
  std::unique_ptr<testing::HttpServer> server_;
  ImageDefinition image_;
};

TEST_F(ApkLockTest, LocksAndBuildsAnExt4Image) {
  Publish(Packages());
  absl::StatusOr<Lockfile> lock = LockImage(image_, "x86_64", Options());
  ASSERT_TRUE(lock.ok()) << lock.status();
  ASSERT_EQ(lock->packages_size(), 3);
  EXPECT_EQ(lock->packages(0).name(), "busybox");
  EXPECT_EQ(lock->packages(0).path(),
            "v3.20/main/x86_64/busybox-1.36.1-r29.apk");
  EXPECT_EQ(lock->packages(1).name(), "musl");
  EXPECT_EQ(lock->packages(2).name(), "podman");
  std::filesystem::create_directories(tmp_ + "/apks");
  for (const LockedPackage& p : lock->packages()) {
    const std::string file =
        absl::StrCat(dir_, "/", p.name(), "-", p.version(), ".apk");
    EXPECT_THAT(Sha256File(file), IsOkAndHolds(p.sha256())) << p.name();
    std::filesystem::copy_file(
        file, absl::StrCat(tmp_, "/apks/", p.name(), ".apk"),
        std::filesystem::copy_options::overwrite_existing);
  }
  // busybox's post-install must be accounted for.
  AssembleOptions options;
  options.definition = image_;
  options.lock = *lock;
  options.debs_dir = tmp_ + "/apks";
  options.output = tmp_ + "/alpine.ext4";
  absl::StatusOr<AssembleReport> report = BuildExt4Image(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("busybox (.post-install)"));
  MaintainerScripts* entry = options.definition.add_maintainer_scripts();
  entry->add_packages("busybox");
  entry->set_fixup("busybox-links");
  report = BuildExt4Image(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->packages, 3);
  RunOk({"e2fsck", "-fn", options.output});
  EXPECT_THAT(
      RunOk({"debugfs", "-R", "stat /usr/bin/newuidmap", options.output}),
      HasSubstr("Mode:  04755"));
  EXPECT_THAT(RunOk({"debugfs", "-R", "cat /bin/busybox", options.output}),
              HasSubstr("ELF busybox"));
  // busybox-links: applets linked, the shipped /bin/sh link kept.
  EXPECT_THAT(RunOk({"debugfs", "-R", "stat /usr/bin/wget", options.output}),
              HasSubstr("Fast link dest: \"/bin/busybox\""));
  EXPECT_THAT(RunOk({"debugfs", "-R", "stat /bin/ls", options.output}),
              HasSubstr("Type: symlink"));
}

TEST_F(ApkLockTest, TamperedPackageIsRefused) {
  Publish(Packages());
  // Same name and size, other data: the signed index's checksum catches it.
  std::vector<FixturePackage> evil = Packages();
  evil[2].data[2].data =
      "\x7f"
      "ELF evil!!";
  std::string checksum;
  absl::StatusOr<std::string> apk = testing::MakeApk(
      "pkgname = podman\npkgver = 5.2.5-r0\narch = x86_64\nsize = 4096\n", {},
      evil[2].data, &checksum);
  ASSERT_TRUE(apk.ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/podman-5.2.5-r0.apk", *apk).ok());
  absl::StatusOr<Lockfile> lock = LockImage(image_, "x86_64", Options());
  ASSERT_FALSE(lock.ok());
  // Refused by its size (the index's S:) or, were it the same size, by the
  // control checksum (C:).
  EXPECT_THAT(lock.status().message(), HasSubstr("package podman"));
  EXPECT_THAT(std::string(lock.status().message()),
              ::testing::AnyOf(HasSubstr("but the signed index says"),
                               HasSubstr("size")))
      << lock.status();
}

TEST_F(ApkLockTest, IndexSignedByUnknownKeyIsRefused) {
  Publish(Packages());
  std::filesystem::remove(tmp_ + "/keys/fixture@example.org.rsa.pub");
  absl::StatusOr<Lockfile> lock = LockImage(image_, "x86_64", Options());
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(
      lock.status().message(),
      HasSubstr(
          "signed by key 'fixture@example.org.rsa.pub', which is not in"));
}

}  // namespace
}  // namespace fcvm::rootfs
