#include "uffd/server_flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm::uffd {
namespace {

using ::testing::HasSubstr;

TEST(ServerFlagsTest, Defaults) {
  absl::StatusOr<ServerOptions> o =
      ParseServerFlags({"/snap/memory", "--socket", "/run/s.sock"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->memory_file, "/snap/memory");
  EXPECT_EQ(o->socket_path, "/run/s.sock");
  EXPECT_EQ(o->threads, DefaultThreads());
  EXPECT_EQ(o->record_window, absl::Seconds(10));
  EXPECT_TRUE(o->prefetch);
  EXPECT_EQ(o->batch_bytes, uint64_t{2} << 20);
  EXPECT_FALSE(o->exit_when_idle);
  EXPECT_EQ(o->handshake_timeout, absl::Seconds(5));
  EXPECT_EQ(o->max_pending_handshakes, 256);
  EXPECT_EQ(o->file_check_interval, absl::Seconds(1));
}

TEST(ServerFlagsTest, EveryFlag) {
  absl::StatusOr<ServerOptions> o = ParseServerFlags(
      {"--socket=/s", "--threads", "3", "--record_window", "0", "--no-prefetch",
       "--batch_bytes", "4096", "--exit_when_idle", "--handshake_timeout",
       "1.5s", "--max_pending_handshakes", "8", "--file_check_interval=250ms",
       "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->memory_file, "/m");
  EXPECT_EQ(o->socket_path, "/s");
  EXPECT_EQ(o->threads, 3);
  EXPECT_EQ(o->record_window, absl::ZeroDuration());
  EXPECT_FALSE(o->prefetch);
  EXPECT_EQ(o->batch_bytes, 4096u);
  EXPECT_TRUE(o->exit_when_idle);
  EXPECT_EQ(o->handshake_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(o->max_pending_handshakes, 8);
  EXPECT_EQ(o->file_check_interval, absl::Milliseconds(250));
}

TEST(ServerFlagsTest, PrefetchSpellings) {
  for (const auto& [flag, want] :
       std::vector<std::pair<std::string, bool>>{{"--prefetch", true},
                                                 {"--no-prefetch", false},
                                                 {"--no_prefetch", false}}) {
    absl::StatusOr<ServerOptions> o =
        ParseServerFlags({"/m", "--socket", "/s", flag});
    ASSERT_TRUE(o.ok()) << flag << ": " << o.status();
    EXPECT_EQ(o->prefetch, want) << flag;
  }
}

TEST(ServerFlagsTest, ErrorsNameTheFlagAndValue) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--socket", "/s"}, "MEMORY_FILE: required"},
      {{"/m"}, "--socket: required"},
      {{"/m", "--socket", "/s", "--record_window", "10"},
       "--record_window '10': a duration like 10s or 500ms (0: never)"},
      {{"/m", "--socket", "/s", "--record_window", "-1s"},
       "--record_window '-1s'"},
      {{"/m", "--socket", "/s", "--handshake_timeout", "0"},
       "--handshake_timeout '0': a duration like 10s or 500ms, more than 0"},
      {{"/m", "--socket", "/s", "--file_check_interval", "soon"},
       "--file_check_interval 'soon'"},
      {{"/m", "--socket", "/s", "--batch_bytes", "0"},
       "--batch_bytes 0: more than 0 bytes"},
      {{"/m", "--socket", "/s", "--max_pending_handshakes", "0"},
       "--max_pending_handshakes 0: a count >= 1"},
      // CLI11's own checks.
      {{"/m", "--socket", "/s", "--threads", "0"}, "--threads"},
      {{"/m", "--socket", "/s", "--batch_bytes", "lots"}, "--batch_bytes"},
      {{"/m", "--socket", "/s", "--no-such-flag"}, "--no-such-flag"},
      {{"/m", "/n", "--socket", "/s"}, "/n"},
  };
  for (const auto& [args, says] : bad) {
    absl::StatusOr<ServerOptions> o = ParseServerFlags(args);
    ASSERT_FALSE(o.ok()) << says;
    EXPECT_TRUE(absl::IsInvalidArgument(o.status())) << o.status();
    EXPECT_THAT(o.status().message(), HasSubstr(says));
  }
}

TEST(ServerFlagsTest, HelpListsEveryFlag) {
  CLI::App app("memory server");
  ServerFlagValues values;
  AddServerFlags(app, &values);
  const std::string help = app.help();
  for (const char* flag :
       {"MEMORY_FILE", "--socket", "--threads", "--record_window", "--prefetch",
        "--no-prefetch", "--batch_bytes", "--exit_when_idle",
        "--handshake_timeout", "--max_pending_handshakes",
        "--file_check_interval"}) {
    EXPECT_THAT(help, HasSubstr(flag)) << help;
  }
}

}  // namespace
}  // namespace fcvm::uffd
