#include "rootfs/image/fixups.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(PasswdFilesTest, MastersBecomeLockedAccounts) {
  absl::StatusOr<PasswdFiles> files = MakePasswdFiles(
      "root:*:0:0:root:/root:/bin/sh\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/"
      "nologin\n",
      "root:*:0:\nshadow:*:42:\n", 86400 * 19000 + 5);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->passwd,
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/"
            "sbin/nologin\n");
  EXPECT_EQ(files->group, "root:x:0:\nshadow:x:42:\n");
  EXPECT_EQ(files->shadow,
            "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
  EXPECT_EQ(files->gshadow, "root:*::\nshadow:*::\n");
}

TEST(PasswdFilesTest, MalformedMastersAreRefused) {
  EXPECT_FALSE(MakePasswdFiles("root:*:0:0\n", "root:*:0:\n", 0).ok());
  EXPECT_FALSE(MakePasswdFiles("root:*:0:0:r:/root:/bin/sh\n",
                               "root:*:0:\nroot:*:0:\n", 0)
                   .ok());
  EXPECT_FALSE(MakePasswdFiles("", "root:*:0:\n", 0).ok());
}

// A self-signed certificate from the openssl tool, and its subject hash as
// `openssl x509 -hash` prints it (what `openssl rehash` names links by).
struct TestCert {
  std::string pem;
  std::string hash;
};
TestCert MakeCert(const std::string& name) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  const std::string key = absl::StrCat(dir, "/", name, ".key");
  const std::string crt = absl::StrCat(dir, "/", name, ".crt");
  SubprocessOptions req{.argv = {"openssl", "req", "-x509", "-newkey",
                                 "rsa:2048", "-nodes", "-keyout", key, "-out",
                                 crt, "-days", "1", "-subj",
                                 absl::StrCat("/CN=", name)}};
  req.stdout_mode = StdioMode::kPipe;
  req.stderr_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> made = RunCommand(req, absl::Minutes(1));
  EXPECT_TRUE(made.ok()) << made.status();
  SubprocessOptions hash{
      .argv = {"openssl", "x509", "-hash", "-noout", "-in", crt}};
  hash.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> hashed =
      RunCommand(hash, absl::Minutes(1));
  EXPECT_TRUE(hashed.ok()) << hashed.status();
  absl::StatusOr<std::string> pem = ReadFile(crt);
  EXPECT_TRUE(pem.ok()) << pem.status();
  if (!made.ok() || !hashed.ok() || !pem.ok()) return {};
  return {*pem, std::string(absl::StripSuffix(hashed->stdout_data, "\n"))};
}

TEST(CaCertificatesTest, BundleConfAndOpensslHashLinks) {
  TestCert a = MakeCert("Alpha Root");
  TestCert b = MakeCert("Beta Root");
  absl::StatusOr<CaCertificates> ca = MakeCaCertificates(
      {{"mozilla/Beta_Root.crt", b.pem}, {"mozilla/Alpha_Root.crt", a.pem}});
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_THAT(ca->conf,
              HasSubstr("mozilla/Alpha_Root.crt\nmozilla/Beta_Root.crt\n"));
  EXPECT_EQ(ca->bundle, a.pem + b.pem);
  EXPECT_THAT(ca->links,
              ::testing::ElementsAre(
                  Pair("Alpha_Root.pem",
                       "/usr/share/ca-certificates/mozilla/Alpha_Root.crt"),
                  Pair(a.hash + ".0", "Alpha_Root.pem"),
                  Pair("Beta_Root.pem",
                       "/usr/share/ca-certificates/mozilla/Beta_Root.crt"),
                  Pair(b.hash + ".0", "Beta_Root.pem")));
}

TEST(CaCertificatesTest, SameSubjectGetsTheNextSuffix) {
  TestCert a = MakeCert("Same");
  TestCert b = MakeCert("Same");
  absl::StatusOr<CaCertificates> ca =
      MakeCaCertificates({{"x/One.crt", a.pem}, {"x/Two.crt", b.pem}});
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ca->links[1].first, a.hash + ".0");
  EXPECT_EQ(ca->links[3].first, a.hash + ".1");
}

TEST(CaCertificatesTest, GarbageIsNamed) {
  absl::StatusOr<CaCertificates> ca =
      MakeCaCertificates({{"mozilla/Bad.crt", "not a certificate"}});
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.status().message(), HasSubstr("mozilla/Bad.crt"));
  EXPECT_FALSE(MakeCaCertificates({}).ok());
}

TEST(DpkgStatusTest, StatusFollowsPackage) {
  EXPECT_EQ(MakeDpkgStatus({"Package: a\nVersion: 1\n",
                            "Package: b\nVersion: 2\nDescription: x\n y\n"}),
            "Package: a\nStatus: install ok installed\nVersion: 1\n\n"
            "Package: b\nStatus: install ok installed\nVersion: 2\n"
            "Description: x\n y\n\n");
}

}  // namespace
}  // namespace fcvm::rootfs
