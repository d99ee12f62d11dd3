#include "runner/vm/logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/vm/log_file.h"

namespace fcvm::runner {
namespace {

using ::testing::HasSubstr;

TEST(LogsTest, RotatedOutputComesFirstAndTheLossIsSaid) {
  VmState state;
  state.set_name("web");
  state.set_dir(absl::StrCat(std::getenv("TEST_TMPDIR"), "/web"));
  state.set_log_max_bytes(64 << 10);
  ASSERT_EQ(mkdir(state.dir().c_str(), 0700), 0);
  absl::StatusOr<RotatingLog> log =
      RotatingLog::Open(state.dir() + "/container.log", 64 << 10);
  ASSERT_TRUE(log.ok());
  std::string all;
  for (int i = 0; i < 20000; ++i) {
    const std::string line = absl::StrCat("line ", i, "\n");
    ASSERT_TRUE(log->Write(line).ok());
    all += line;
  }
  const std::string out = state.dir() + "/out", note = state.dir() + "/note";
  {
    UniqueFd out_fd(open(out.c_str(), O_WRONLY | O_CREAT, 0600));
    UniqueFd note_fd(open(note.c_str(), O_WRONLY | O_CREAT, 0600));
    LogsRequest request;
    request.out_fd = out_fd.get();
    request.note_fd = note_fd.get();
    ASSERT_TRUE(CopyLogs(state, request).ok());
  }
  const std::string got = *ReadFile(out);
  EXPECT_LE(got.size(), 2u * (64 << 10));
  // The newest, whole and in order.
  EXPECT_EQ(all.substr(all.size() - got.size()), got);
  EXPECT_EQ(*ReadFile(note),
            "fcvm: web: output older than the last 128 KiB is not kept "
            "(each log: 64 KiB, plus one rotated file; run --log-max-size)\n");
  state.set_dir(state.dir() + "-none");
  EXPECT_THAT(CopyLogs(state, {}).message(),
              HasSubstr("has no container.log yet"));
}

}  // namespace
}  // namespace fcvm::runner
