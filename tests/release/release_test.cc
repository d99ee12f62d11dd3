// Release tarballs end to end: //release:tarball_<cpu> unpacked with tar
// and run with no Bazel in PATH and no runfiles; installed with `fcvm setup
// install` and run from PREFIX/current; a tampered tarball, a tarball for
// the other CPU and a bad signature refused, the installed version intact.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vmm/kvm.h"
#include "tests/runner/fcvm_fixture.h"

namespace fcvm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kVersionPrefix[] = "fcvm-";

struct Tarballs {
  std::string host, sign;
};

Tarballs Files() {
  const std::vector<std::string>& extra = g_programs.extra;
  return {extra.at(0), extra.at(1)};
}

std::string OtherArch() {
  return runner::HostArch() == "x86_64" ? "aarch64" : "x86_64";
}

std::string Basename(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// "fcvm-V-linux-ARCH" of a tarball's file name.
std::string TopOf(const std::string& tarball) {
  std::string name = Basename(tarball);
  return name.substr(0, name.size() - std::string(".tar.gz").size());
}

std::string VersionOf(const std::string& tarball) {
  const std::string top = TopOf(tarball);
  const size_t linux = top.rfind("-linux-");
  return top.substr(sizeof(kVersionPrefix) - 1,
                    linux - (sizeof(kVersionPrefix) - 1));
}

class ReleaseTest : public FcvmTest {
 protected:
  void SetUp() override {
    FcvmTest::SetUp();
    tmp_ = absl::StrCat(
        std::getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(tmp_.c_str(), 0755), 0);
    MakePathWithoutBazel();
  }

  // A PATH directory with every program of /usr/bin and /bin but Bazel's:
  // what a host with the release and no Bazel has.
  void MakePathWithoutBazel() {
    path_ = tmp_ + "/path";
    ASSERT_EQ(mkdir(path_.c_str(), 0755), 0);
    for (const char* dir : {"/usr/bin", "/bin"}) {
      DIR* d = opendir(dir);
      ASSERT_NE(d, nullptr);
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == ".." || absl::StartsWith(name, "bazel")) {
          continue;
        }
        (void)symlink(absl::StrCat(dir, "/", name).c_str(),
                      absl::StrCat(path_, "/", name).c_str());
      }
      closedir(d);
    }
  }

  // Runs `fcvm` as a user's shell would: a clean environment (no runfiles,
  // no Bazel variables), PATH without Bazel.
  void UseFcvm(const std::string& fcvm) {
    fcvm_command_ = {"/usr/bin/env",
                     "-i",
                     absl::StrCat("HOME=", tmp_),
                     absl::StrCat("PATH=", path_),
                     "LANG=C.UTF-8",
                     absl::StrCat("FCVM_STATE_DIR=", state_),
                     fcvm};
  }

  // `fcvm run -d` of busybox-httpd, its page through the published port,
  // what inspect says of the assets; then stop and rm.
  void ServesAPage(const std::string& name, const std::string& assets_dir) {
    const uint16_t port = FreePort();
    Result run = Fcvm({"run", "-d", "--name", name, "-p",
                       absl::StrCat(port, ":8080"), "busybox-httpd"},
                      absl::Minutes(8));
    ASSERT_EQ(run.code, 0) << run.err;
    google::protobuf::Struct state = Inspect(name);
    Remember(state);
    EXPECT_EQ(Field(state, "phase"), "RUNNING");
    EXPECT_THAT(Field(state, "assets"), HasSubstr(assets_dir)) << run.err;
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
    Result stop = Fcvm({"stop", name});
    EXPECT_EQ(stop.code, 0) << stop.err;
    Result rm = Fcvm({"rm", name});
    EXPECT_EQ(rm.code, 0) << rm.err;
  }

  Result Shell(const std::string& script) {
    return Exec({"/bin/bash", "-c", script}, absl::Minutes(5));
  }

  // Copies the tarball `src` to `dst` (gzip), each member through `edit`:
  // Python lines (indented four spaces) that may change `m` (the member)
  // and `data` (its bytes, None for a directory), with `args` as
  // `args[0]`... Python's tarfile, not ours: a tarball as someone else
  // would write it.
  Result RewriteTarball(const std::string& src, const std::string& dst,
                        const std::vector<std::string>& args,
                        const std::string& edit) {
    std::string quoted;
    for (const std::string& arg : args) {
      absl::StrAppend(&quoted, " '", arg, "'");
    }
    return Shell(absl::StrCat(
        "set -e; python3 - '", src, "' '", dst, "'", quoted, " <<'EOF'\n",
        "import io, json, sys, tarfile\n"
        "src, dst, args = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
        "s = tarfile.open(src); d = tarfile.open(dst, 'w:gz')\n"
        "for m in s.getmembers():\n"
        "    data = s.extractfile(m).read() if m.isfile() else None\n",
        edit,
        "    d.addfile(m, io.BytesIO(data) if data is not None else None)\n"
        "d.close()\n"
        "EOF\n"));
  }

  std::string tmp_, path_;
};

TEST_F(ReleaseTest, UnpackedWithTarRunsWithoutBazel) {
  const Tarballs t = Files();
  Result untar =
      Exec({"/bin/tar", "-xzf", t.host, "-C", tmp_}, absl::Minutes(5));
  ASSERT_EQ(untar.code, 0) << untar.err;
  const std::string top = absl::StrCat(tmp_, "/", TopOf(t.host));
  UseFcvm(top + "/bin/fcvm");
  // The binary is not Bazel's: only system libraries.
  Result ldd = Exec({"/usr/bin/ldd", top + "/bin/fcvm"}, absl::Minutes(1));
  EXPECT_THAT(ldd.out, Not(HasSubstr("absl"))) << ldd.out;
  EXPECT_THAT(ldd.out, Not(HasSubstr("protobuf"))) << ldd.out;
  EXPECT_THAT(ldd.out, Not(HasSubstr("not found"))) << ldd.out;

  Result version = Fcvm({"--version"});
  ASSERT_EQ(version.code, 0) << version.out << version.err;
  EXPECT_THAT(version.out, HasSubstr(absl::StrCat("fcvm ", VersionOf(t.host))));
  EXPECT_THAT(version.out,
              HasSubstr(absl::StrCat("assets:  ", top,
                                     "/share/fcvm (next to the binary")));
  EXPECT_THAT(version.out, Not(HasSubstr("commit:  not recorded")));
  EXPECT_THAT(version.out, Not(HasSubstr("CHANGED")));

  Result preflight = Fcvm({"setup", "preflight"});
  EXPECT_EQ(preflight.code, 0) << preflight.out << preflight.err;
  EXPECT_THAT(preflight.out, HasSubstr("ok   guest assets"));

  ServesAPage("unpacked", top + "/share/fcvm");

  // --assets DIR and $FCVM_ASSETS name the assets for a binary elsewhere.
  const std::string moved = tmp_ + "/fcvm-elsewhere";
  ASSERT_EQ(link((top + "/bin/fcvm").c_str(), moved.c_str()), 0);
  UseFcvm(moved);
  Result none = Fcvm({"run", "--name", "none", "busybox-httpd"});
  EXPECT_NE(none.code, 0);
  EXPECT_THAT(none.err, HasSubstr("fcvm setup install"));
  fcvm_command_.insert(fcvm_command_.end() - 1,
                       absl::StrCat("FCVM_ASSETS=", top));
  version = Fcvm({"--version"});
  EXPECT_THAT(version.out, HasSubstr("($FCVM_ASSETS"));
  version = Fcvm({"--assets", tmp_, "--version"});
  EXPECT_NE(version.code, 0);
  EXPECT_THAT(version.err, HasSubstr(absl::StrCat("--assets '", tmp_,
                                                  "': no MANIFEST.json")));
}

TEST_F(ReleaseTest, InstalledBySetupRunsAndRefusesWhatItMust) {
  const Tarballs t = Files();
  const std::string version = VersionOf(t.host);
  const std::string prefix = tmp_ + "/lib";
  // The installer is the release's own binary, from a plain tar x.
  ASSERT_EQ(
      Exec({"/bin/tar", "-xzf", t.host, "-C", tmp_}, absl::Minutes(5)).code, 0);
  UseFcvm(absl::StrCat(tmp_, "/", TopOf(t.host), "/bin/fcvm"));
  Result install =
      Fcvm({"setup", "install", t.host, "--prefix", prefix}, absl::Minutes(5));
  ASSERT_EQ(install.code, 0) << install.err;
  EXPECT_EQ(install.out, absl::StrCat(prefix, "/", version, "/bin/fcvm\n"));
  char target[256] = {};
  ASSERT_GT(readlink((prefix + "/current").c_str(), target, sizeof(target) - 1),
            0);
  EXPECT_EQ(std::string(target), version);
  absl::StatusOr<std::string> sums =
      ReadFile(absl::StrCat(prefix, "/", version, "/SHA256SUMS"));
  ASSERT_TRUE(sums.ok()) << sums.status();

  // Run from PREFIX/current/bin.
  UseFcvm(prefix + "/current/bin/fcvm");
  Result ls = Fcvm({"setup", "ls", "--prefix", prefix});
  EXPECT_THAT(ls.out, HasSubstr(version));
  {
    const uint16_t port = FreePort();
    Result run = Fcvm({"run", "-d", "--name", "installed", "-p",
                       absl::StrCat(port, ":8080"), "busybox-httpd"},
                      absl::Minutes(8));
    ASSERT_EQ(run.code, 0) << run.err;
    google::protobuf::Struct state = Inspect("installed");
    Remember(state);
    EXPECT_THAT(Field(state, "assets"),
                HasSubstr(absl::StrCat(prefix, "/", version, "/share/fcvm")));
    absl::StatusOr<std::string> page = Get("127.0.0.1", port);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(*page, HasSubstr("fcvm busybox-httpd"));
    // In use: not removed, even with --force.
    Result rm = Fcvm({"setup", "rm", "--prefix", prefix, "-f", version});
    EXPECT_NE(rm.code, 0);
    EXPECT_THAT(rm.err, HasSubstr("installed"));
    ls = Fcvm({"setup", "ls", "--prefix", prefix});
    EXPECT_THAT(ls.out, HasSubstr("installed"));  // IN USE BY
  }

  // A tampered tarball of the same version: refused, nothing changed.
  const std::string tampered = tmp_ + "/" + Basename(t.host);
  Result edit = RewriteTarball(
      t.host, tampered, {},
      "    if m.name.endswith('/share/fcvm/kernel.config'):\n"
      "        data = data + b'CONFIG_EVIL=y\\n'; m.size = len(data)\n");
  ASSERT_EQ(edit.code, 0) << edit.err;
  Result bad = Fcvm({"setup", "install", tampered, "--prefix", prefix},
                    absl::Minutes(5));
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("share/fcvm/kernel.config"));
  EXPECT_THAT(bad.err, HasSubstr("sha256"));
  EXPECT_EQ(
      ReadFile(absl::StrCat(prefix, "/", version, "/SHA256SUMS")).value_or(""),
      *sums);

  // A tarball for the other CPU (the host's, renamed and its manifest
  // saying so, as `setup install` sees one; the real one is //release:
  // tarball_<other cpu>): refused before anything is unpacked.
  const std::string host_top = TopOf(t.host);
  const std::string other_top =
      absl::StrReplaceAll(host_top, {{runner::HostArch(), OtherArch()}});
  const std::string other_tarball =
      absl::StrCat(tmp_, "/", other_top, ".tar.gz");
  Result rename = RewriteTarball(
      t.host, other_tarball, {host_top, other_top, OtherArch()},
      "    old, new, other = args\n"
      "    if m.name.endswith('/MANIFEST.json'):\n"
      "        j = json.loads(data); j['arch'] = other; j['name'] = new\n"
      "        data = json.dumps(j).encode(); m.size = len(data)\n"
      "    m.name = new + m.name[len(old):]\n");
  ASSERT_EQ(rename.code, 0) << rename.err;
  Result other = Fcvm({"setup", "install", other_tarball, "--prefix", prefix},
                      absl::Minutes(5));
  EXPECT_NE(other.code, 0);
  EXPECT_THAT(other.err,
              HasSubstr(absl::StrCat("is for ", OtherArch(), "; this host is ",
                                     runner::HostArch())));
  DIR* d = opendir(prefix.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    EXPECT_THAT(std::string(e->d_name), Not(HasSubstr(".staging")));
  }
  closedir(d);

  // A signed release: verified with the right key, refused with another.
  Result keys = Shell(absl::StrCat(
      "set -e; cd '", tmp_, "'; signify-openbsd -G -n -p a.pub -s a.sec; ",
      "signify-openbsd -G -n -p b.pub -s b.sec; cp '", t.host,
      "' signed.tar.gz; '", t.sign, "' signed.tar.gz a.sec"));
  ASSERT_EQ(keys.code, 0) << keys.err;
  const std::string signed_tarball = tmp_ + "/signed.tar.gz";
  Result wrong = Fcvm({"setup", "install", signed_tarball, "--prefix",
                       tmp_ + "/lib2", "--public-key", tmp_ + "/b.pub"},
                      absl::Minutes(5));
  EXPECT_NE(wrong.code, 0);
  EXPECT_THAT(wrong.err, HasSubstr("signature"));
  Result right = Fcvm({"setup", "install", signed_tarball, "--prefix",
                       tmp_ + "/lib2", "--public-key", tmp_ + "/a.pub"},
                      absl::Minutes(5));
  EXPECT_EQ(right.code, 0) << right.err;

  // Unused now: removed (it is current: --force), by the unpacked binary.
  EXPECT_EQ(Fcvm({"rm", "-f", "installed"}).code, 0);
  UseFcvm(absl::StrCat(tmp_, "/", TopOf(t.host), "/bin/fcvm"));
  Result rm = Fcvm({"setup", "rm", "--prefix", prefix, version});
  EXPECT_NE(rm.code, 0) << "current, without --force";
  rm = Fcvm({"setup", "rm", "--prefix", prefix, "-f", version});
  EXPECT_EQ(rm.code, 0) << rm.err;
  struct stat st;
  EXPECT_NE(stat(absl::StrCat(prefix, "/", version).c_str(), &st), 0);
}

}  // namespace
}  // namespace fcvm::testing

int main(int argc, char** argv) {
  return fcvm::testing::FcvmTestMain(argc, argv);
}
