// Replays the committed fuzz corpus with the project's own compiler: every
// input keeps the request parsers' promises (what the fuzz target aborts
// on) and gets the verdict it is in the corpus for.
#include <dirent.h>

#include <map>
#include <string>

#include "base/file.h"
#include "gtest/gtest.h"
#include "runner/api/fuzz/request_fuzzer.h"

namespace fcvm::runner::api {
namespace {

const std::map<std::string, std::string>& Verdicts() {
  static const auto* verdicts = new std::map<std::string, std::string>{
      {"start_request", "request: 89; stream: msg 89"},
      {"connect_request", "request: 24; stream: msg 24"},
      {"new_sandbox",
       "request error: the request envelope's flags are 0x7b; a request is "
       "one message envelope (flags 0x00) and this looks like bare JSON: a "
       "streaming call sends its message in an envelope; stream: error: "
       "envelope flags "
       "0x7b are not Connect's (0x00 message, 0x02 end)"},
      {"send_signal",
       "request error: the request envelope's flags are 0x7b; a request is "
       "one message envelope (flags 0x00) and this looks like bare JSON: a "
       "streaming call sends its message in an envelope; stream: error: "
       "envelope flags "
       "0x7b are not Connect's (0x00 message, 0x02 end)"},
      {"list_dir_newer_sdk",
       "request error: the request envelope's flags are 0x7b; a request is "
       "one message envelope (flags 0x00) and this looks like bare JSON: a "
       "streaming call sends its message in an envelope; stream: error: "
       "envelope flags "
       "0x7b are not Connect's (0x00 message, 0x02 end)"},
      {"response_stream",
       "request error: 48 bytes after the request envelope; a "
       "server-streaming call takes exactly one message; stream: msg 32, "
       "msg 36, end 2"},
      {"compressed",
       "request error: compressed envelopes are not accepted (send "
       "Connect-Content-Encoding identity); stream: msg 2"},
      {"short_header",
       "request error: the request body is 3 bytes; a Connect envelope's "
       "header alone is 5; stream: partial"},
      {"trailing_bytes",
       "request error: 2 bytes after the request envelope; a "
       "server-streaming call takes exactly one message; stream: msg 2, "
       "partial"},
      {"huge_length",
       "request error: the request envelope declares 4294967295 bytes, over "
       "the limit of 65536; stream: error: an envelope of 4294967295 bytes "
       "is over the limit of 65536"},
      {"bad_json_payload", "request: 1; stream: msg 1"},
      {"unknown_flags",
       "request error: the request envelope's flags are 0x40; a request is "
       "one message envelope (flags 0x00); stream: error: envelope flags "
       "0x40 are not Connect's (0x00 message, 0x02 end)"},
  };
  return *verdicts;
}

TEST(CorpusTest, EveryInputKeepsThePromisesAndItsVerdict) {
  const std::string dir = "runner/api/fuzz/corpus";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int seen = 0;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    ++seen;
    auto input = ReadFile(dir + "/" + name);
    ASSERT_TRUE(input.ok()) << input.status();
    EXPECT_EQ(BrokenRequestPromise(*input), "") << name;
    auto verdict = Verdicts().find(name);
    ASSERT_NE(verdict, Verdicts().end())
        << name << " has no verdict: " << DescribeEnvelopes(*input);
    EXPECT_EQ(DescribeEnvelopes(*input), verdict->second) << name;
  }
  closedir(d);
  EXPECT_EQ(seen, static_cast<int>(Verdicts().size()));
}

}  // namespace
}  // namespace fcvm::runner::api
