#ifndef FCVM_CHANNEL_FUZZ_FRAME_FUZZER_H_
#define FCVM_CHANNEL_FUZZ_FRAME_FUZZER_H_

// The promises of the channel's receive path, checked on any bytes a peer
// can send: the fuzz target (LLVMFuzzerTestOneInput, defined beside this)
// aborts on a broken one; the corpus test reports it.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fcvm::channel {

// Stands for the Link's own instance id in an input (16 bytes, as long as
// NewInstanceId's): replaced before the bytes are sent, so an input can
// hold a Hello from the peer of before, which resumes.
inline constexpr absl::string_view kInstancePlaceholder = "<link instance!>";

// The promise FrameReader breaks on `input`, or "" if it keeps them all:
// the same frames and errors whether the bytes come at once or in chunks
// (sizes drawn from the input); errors are DataLoss "bad frame: ...", and
// none while resynchronising; only Hellos end a resync; at most a frame's
// worth buffered while waiting; every frame encodes and reads back equal.
std::string BrokenReaderPromise(absl::string_view input);

// What a Link made of `input` arriving on its transport (in chunks drawn
// from the input), and the promise it broke, if any.
struct LinkRun {
  // "" if every promise was kept: OnReadable and Flush succeed, output
  // drains, what the link writes is whole frames of its own kinds
  // beginning with its Hello, nothing is delivered before a peer's Hello,
  // numbered frames are delivered in sequence, unacked() and the output
  // stay within bounds.
  std::string broken;
  // In order: "new peer", "resumed", "data <seq>", "<body> <seq>" for
  // other frames, "garbage: <message>".
  std::vector<std::string> events;
  // Each frame the link wrote: "hello", "hello reply", "error <CODE>",
  // "<body> <seq>", "ack".
  std::vector<std::string> wrote;
};
LinkRun RunLink(absl::string_view input);

// The frames and errors a FrameReader finds in `input` fed at once:
// "hello", "<body> <seq>", "empty", "error: <message>", joined by ", ".
std::string DescribeStream(absl::string_view input);

// BrokenReaderPromise, then RunLink's promise: "" if both hold.
std::string BrokenChannelPromise(absl::string_view input);

}  // namespace fcvm::channel

#endif  // FCVM_CHANNEL_FUZZ_FRAME_FUZZER_H_
