// Replays the committed fuzz corpus with the project's own compiler: every
// input keeps the channel's promises (what the fuzz target aborts on), and
// gets the verdict it is in the corpus for.
#include <dirent.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_join.h"
#include "base/file.h"
#include "channel/fuzz/frame_fuzzer.h"
#include "gtest/gtest.h"

namespace fcvm::channel {
namespace {

// What each input is: the reader's frames and errors, the link's events
// and the frames it wrote.
struct Verdict {
  std::string stream;
  std::string events;
  std::string wrote;
};

const std::map<std::string, Verdict>& Verdicts() {
  static const auto* verdicts = new std::map<std::string, Verdict>{
      // Found by the fuzzer: a second peer's Hello, asking no answer, came
      // before the link wrote anything; the link dropped its own Hello
      // with the rest unwritten and wrote frames without any Hello first.
      {"another_peer_unasked",
       {"hello, data 1, error: bad frame: 15 bytes that are not a Frame, "
        "hello, error: bad frame: protocol version 129, this end speaks 1",
        "new peer; data 1; garbage: bad frame: 15 bytes that are not a "
        "Frame; new peer; garbage: bad frame: protocol version 129, this end "
        "speaks 1",
        "hello, open 1, open 2, error BAD_FRAME"}},
      {"bad_frame_error",
       {"hello, error BAD_FRAME, hello",
        "new peer; garbage: agent: bad frame: no FCV header",
        // Reset: what it had queued goes after the next Hello; the rest
        // of what it read is skipped.
        "hello reply, hello reply"}},
      {"empty_frame",
       {"ack, hello, ack", "new peer", "hello reply, open 1, open 2"}},
      {"gap",
       {"hello, data 1, data 3, hello, data 2, data 3",
        "new peer; data 1; garbage: frame 3 after 1: resuming",
        "hello reply, hello reply"}},
      {"garbage_then_hello",
       {"hello, error: bad frame: no FCV header, hello, data 1, data 2",
        "new peer; garbage: bad frame: no FCV header; resumed; data 1; data 2",
        // The peer's Hello came before the link's own and its BAD_FRAME
        // were written: its answer and the resent frames stand for them.
        "hello, open 1, open 2, credit 3, credit 4"}},
      {"hello", {"hello", "new peer", "hello reply, hello, open 1, open 2"}},
      {"hello_data",
       {"hello, data 1, data 2", "new peer; data 1; data 2",
        "hello reply, hello, open 1, open 2, credit 3, credit 4"}},
      {"not_a_frame",
       {"hello, error: bad frame: 2 bytes that are not a Frame, hello",
        // The second Hello remembers no peer: a new one.
        "new peer; garbage: bad frame: 2 bytes that are not a Frame; new peer",
        "hello reply, open 1, open 2, error BAD_FRAME, hello, open 1, open 2"}},
      {"partial_magic",
       {"error: bad frame: no FCV header, hello", "new peer",
        "hello reply, hello, open 1, open 2"}},
      {"resumed",
       {"hello, data 1, hello, data 1, data 2",
        "new peer; data 1; resumed; data 2",
        "hello, open 2, credit 3, credit 4"}},
      {"too_long",
       {"hello, error: bad frame: 262145 bytes, more than the 262144 allowed, "
        "hello",
        "new peer; garbage: bad frame: 262145 bytes, more than the 262144 "
        "allowed; resumed",
        "hello reply, hello, open 1, open 2"}},
      {"version_hello",
       {"hello, hello", "new peer",
        "hello reply, error VERSION, hello, open 1, open 2"}},
      // Skipped quietly by the link: it resynchronises from Attach.
      {"wrong_version",
       {"error: bad frame: protocol version 2, this end speaks 1, hello",
        "new peer", "hello reply, hello, open 1, open 2"}},
  };
  return *verdicts;
}

TEST(ChannelCorpusTest, EveryInputKeepsThePromisesAndGetsItsVerdict) {
  const std::string dir = "channel/fuzz/corpus";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  std::set<std::string> seen;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string name = e->d_name;
    seen.insert(name);
    absl::StatusOr<std::string> input = fcvm::ReadFile(dir + "/" + name);
    ASSERT_TRUE(input.ok()) << input.status();
    EXPECT_EQ(BrokenReaderPromise(*input), "") << name;
    const LinkRun run = RunLink(*input);
    EXPECT_EQ(run.broken, "") << name;
    const Verdict got{DescribeStream(*input), absl::StrJoin(run.events, "; "),
                      absl::StrJoin(run.wrote, ", ")};
    auto verdict = Verdicts().find(name);
    if (verdict == Verdicts().end()) {
      ADD_FAILURE() << name << ": a corpus input without a verdict here:\n"
                    << "{\"" << name << "\",\n {\"" << got.stream << "\",\n  \""
                    << got.events << "\",\n  \"" << got.wrote << "\"}},";
      continue;
    }
    EXPECT_EQ(got.stream, verdict->second.stream) << name;
    EXPECT_EQ(got.events, verdict->second.events) << name;
    EXPECT_EQ(got.wrote, verdict->second.wrote) << name;
  }
  closedir(d);
  for (const auto& [name, verdict] : Verdicts()) {
    EXPECT_EQ(seen.count(name), 1u) << name << ": not in the corpus";
  }
}

}  // namespace
}  // namespace fcvm::channel
