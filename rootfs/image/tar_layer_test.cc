#include "rootfs/image/tar_layer.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rootfs/testing/entries.h"

namespace fcvm::rootfs {
namespace {

using ::testing::HasSubstr;
using Type = FileEntry::Type;

std::string Tmp(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

using testing::MakeEntry;

[[nodiscard]] absl::Status Populate(TarLayer& layer) {
  FileEntry link = MakeEntry(Type::kSymlink, "bin/sh", 0777);
  link.link_target = "busybox";
  FileEntry hard = MakeEntry(Type::kHardlink, "bin/ls", 0755);
  hard.link_target = "bin/busybox";
  FileEntry ping = MakeEntry(Type::kFile, "bin/ping", 0755);
  ping.xattrs["security.capability"] = std::string("\x01\x00\x00\x02", 4);
  for (const auto& [entry, data] :
       std::vector<std::pair<FileEntry, std::string>>{
           {MakeEntry(Type::kFile, "bin/busybox", 0755), "BUSYBOX"},
           {link, ""},
           {hard, ""},
           {ping, "ping"},
           {MakeEntry(Type::kFile, "usr/bin/passwd", 04755), "x"},
           {MakeEntry(Type::kFile, "etc/shadow", 0640, 0, 42), "root:*::\n"},
           {MakeEntry(Type::kDirectory, "bin", 0700), ""}}) {
    if (absl::Status s = layer.Add(entry, data); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string Listing(const std::string& path) {
  SubprocessOptions options{.argv = {"tar", "--numeric-owner", "-tvf", path}};
  options.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out =
      RunCommand(options, absl::Minutes(1));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->stdout_data : "";
}

TEST(TarLayerTest, WritesWhatTarReadsBack) {
  const std::string path = Tmp("layer.tar");
  absl::StatusOr<std::unique_ptr<TarLayer>> layer =
      TarLayer::Create(path, 1735689600);
  ASSERT_TRUE(layer.ok()) << layer.status();
  ASSERT_TRUE(Populate(**layer).ok());
  ASSERT_TRUE((*layer)->Finish().ok());
  const std::string listing = Listing(path);
  // Parents first, implicitly; owners numeric; setuid kept; one time.
  EXPECT_THAT(
      listing,
      HasSubstr("drwxr-xr-x 0/0               0 2025-01-01 00:00 bin/\n"));
  EXPECT_THAT(
      listing,
      HasSubstr(
          "lrwxrwxrwx 0/0               0 2025-01-01 00:00 bin/sh -> busybox"));
  EXPECT_THAT(listing, HasSubstr("bin/ls link to bin/busybox"));
  EXPECT_THAT(listing, HasSubstr("-rwsr-xr-x 0/0"));
  EXPECT_THAT(listing, HasSubstr("-rw-r----- 0/42"));
  SubprocessOptions xattrs{
      .argv = {"tar", "--xattrs", "--xattrs-include=*", "-xf", path, "-C",
               std::getenv("TEST_TMPDIR"), "--to-stdout", "bin/busybox"}};
  xattrs.stdout_mode = StdioMode::kPipe;
  absl::StatusOr<Subprocess::Output> out = RunCommand(xattrs, absl::Minutes(1));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "BUSYBOX");
  // The capability is a SCHILY.xattr pax record.
  absl::StatusOr<std::string> raw = ReadFile(path);
  ASSERT_TRUE(raw.ok());
  EXPECT_THAT(*raw, HasSubstr("SCHILY.xattr.security.capability="));
}

TEST(TarLayerTest, SameEntriesSameBytes) {
  std::string bytes[2];
  for (int i = 0; i < 2; ++i) {
    const std::string path = Tmp(absl::StrCat("same-", i, ".tar"));
    absl::StatusOr<std::unique_ptr<TarLayer>> layer = TarLayer::Create(path, 1);
    ASSERT_TRUE(layer.ok());
    ASSERT_TRUE(Populate(**layer).ok());
    ASSERT_TRUE((*layer)->Finish().ok());
    absl::StatusOr<std::string> read = ReadFile(path);
    ASSERT_TRUE(read.ok()) << read.status();
    bytes[i] = *read;
  }
  EXPECT_EQ(bytes[0], bytes[1]);
}

TEST(TarLayerTest, RefusesConflictsAndWritingThroughLinks) {
  absl::StatusOr<std::unique_ptr<TarLayer>> layer =
      TarLayer::Create(Tmp("bad.tar"), 1);
  ASSERT_TRUE(layer.ok());
  ASSERT_TRUE((*layer)->Add(MakeEntry(Type::kFile, "etc/a", 0644), "1").ok());
  EXPECT_EQ((*layer)->Add(MakeEntry(Type::kFile, "etc/a", 0644), "2").code(),
            absl::StatusCode::kAlreadyExists);
  FileEntry lib = MakeEntry(Type::kSymlink, "lib", 0777);
  lib.link_target = "usr/lib";
  ASSERT_TRUE((*layer)->Add(lib, "").ok());
  absl::Status through =
      (*layer)->Add(MakeEntry(Type::kFile, "lib/x.so", 0644), "");
  EXPECT_EQ(through.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(through.message()),
              HasSubstr("'/lib/x.so' would be written through '/lib'"));
  FileEntry hard = MakeEntry(Type::kHardlink, "h", 0644);
  hard.link_target = "missing";
  EXPECT_FALSE((*layer)->Add(hard, "").ok());
}

}  // namespace
}  // namespace fcvm::rootfs
