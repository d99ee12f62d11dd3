// libFuzzer target for the channel's receive path: any bytes a peer can
// send, fed to a FrameReader in chunks and to a Link over a socketpair,
// keep every promise in frame_fuzzer.h. Built with clang by run.sh
// (libFuzzer, ASan, UBSan); //channel/fuzz:corpus_test replays the corpus
// with the project's compiler.
#include "channel/fuzz/frame_fuzzer.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/unique_fd.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"
#include "channel/link.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/logging.h"

namespace fcvm::channel {
namespace {

// Chunk sizes drawn from the input itself, so a run repeats exactly:
// splitmix64 seeded with the input's FNV-1a hash.
class Chunker {
 public:
  explicit Chunker(absl::string_view input) {
    state_ = 0xcbf29ce484222325u;
    for (char c : input) {
      state_ = (state_ ^ static_cast<uint8_t>(c)) * 0x100000001b3u;
    }
  }

  // Mostly a few bytes (headers split everywhere), sometimes up to `max`.
  size_t Next(size_t max) {
    const uint64_t r = Random();
    return 1 + (r >> 8) % ((r & 3) == 0 ? max : 16);
  }

 private:
  uint64_t Random() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }

  uint64_t state_;
};

std::string BodyName(const Frame& frame) {
  if (frame.body_case() == Frame::BODY_NOT_SET) return "empty";
  // The oneof's case is its field's number.
  return Frame::descriptor()->FindFieldByNumber(frame.body_case())->name();
}

// One result of Next(), as the reader promises are compared: the frame's
// encoding or the error's message.
struct Result {
  std::string frame;  // Serialized; empty for an error.
  std::string error;
  bool operator==(const Result& o) const {
    return frame == o.frame && error == o.error;
  }
};

// Feeds `input` in the chunks `next_size` gives, draining Next() after each
// one and checking the promises that hold step by step. Returns the broken
// promise ("" if none) and appends every result to `results`.
template <typename NextSize>
std::string Read(absl::string_view input, NextSize next_size,
                 std::vector<Result>& results) {
  FrameReader reader;
  size_t errors = 0;
  bool error_since_hello = false;
  for (size_t at = 0; at < input.size();) {
    const size_t n = std::min(next_size(), input.size() - at);
    reader.Feed(input.substr(at, n));
    at += n;
    for (;;) {
      if (results.size() > input.size()) {
        return "Next() gave more results than there are bytes";
      }
      const bool resyncing = reader.resyncing();
      absl::StatusOr<std::optional<Frame>> next = reader.Next();
      if (!next.ok()) {
        if (!absl::IsDataLoss(next.status()) ||
            !absl::StartsWith(next.status().message(), "bad frame: ")) {
          return absl::StrCat("an error not DataLoss \"bad frame: ...\": ",
                              next.status().ToString());
        }
        if (resyncing || error_since_hello) {
          return absl::StrCat("an error said while resynchronising: ",
                              next.status().message());
        }
        if (!reader.resyncing()) return "not resynchronising after an error";
        ++errors;
        error_since_hello = true;
        results.push_back({"", std::string(next.status().message())});
        continue;
      }
      if (!next->has_value()) {
        if (reader.buffered() >= kHeaderBytes + kMaxPayloadBytes) {
          return absl::StrCat(reader.buffered(), " bytes buffered waiting");
        }
        break;
      }
      const Frame& frame = **next;
      if (resyncing && !frame.has_hello()) {
        return absl::StrCat("a ", BodyName(frame), " frame ended a resync");
      }
      if (reader.resyncing()) return "still resynchronising after a frame";
      if (frame.has_hello()) error_since_hello = false;
      std::string encoding = frame.SerializeAsString();
      if (encoding.empty()) encoding = std::string("\0", 1);  // Not an error.
      if (frame.ByteSizeLong() <= kMaxPayloadBytes) {
        // Non-canonical input (a 5-byte negative int32) may encode longer.
        FrameReader again;
        again.Feed(EncodeFrame(frame));
        absl::StatusOr<std::optional<Frame>> back = again.Next();
        if (!back.ok() || !back->has_value() ||
            (*back)->SerializeAsString() != frame.SerializeAsString() ||
            again.buffered() != 0) {
          return absl::StrCat("a ", BodyName(frame),
                              " frame did not read back equal");
        }
      }
      results.push_back({std::move(encoding), ""});
    }
  }
  return "";
}

std::string Describe(const Frame& frame) {
  if (frame.has_hello()) return frame.hello().reply() ? "hello reply" : "hello";
  if (frame.has_error()) {
    return absl::StrCat("error ", Error::Code_Name(frame.error().code()));
  }
  if (frame.body_case() == Frame::BODY_NOT_SET) {
    return frame.seq() == 0 ? "ack" : absl::StrCat("empty ", frame.seq());
  }
  return absl::StrCat(BodyName(frame), " ", frame.seq());
}

// The most output per input byte: the largest answer (a Hello and every
// unacked frame again) to the smallest input that asks for it.
constexpr size_t kOutputPerInputByte = 32;
// Frames the harness keeps unacked at most (credits stop there).
constexpr size_t kMaxUnacked = 16;

}  // namespace

std::string BrokenReaderPromise(absl::string_view input) {
  std::vector<Result> whole;
  std::string broken = Read(
      input, [&] { return input.size(); }, whole);
  if (!broken.empty()) return absl::StrCat("fed at once: ", broken);
  std::vector<Result> chunked;
  Chunker chunker(input);
  broken = Read(
      input, [&] { return chunker.Next(4096); }, chunked);
  if (!broken.empty()) return absl::StrCat("fed in chunks: ", broken);
  if (!(whole == chunked)) {
    return absl::StrCat(whole.size(), " results fed at once, ", chunked.size(),
                        " fed in chunks, not the same");
  }
  return "";
}

std::string DescribeStream(absl::string_view input) {
  FrameReader reader;
  reader.Feed(input);
  std::vector<std::string> out;
  for (size_t i = 0; i <= input.size(); ++i) {
    absl::StatusOr<std::optional<Frame>> next = reader.Next();
    if (!next.ok()) {
      out.push_back(absl::StrCat("error: ", next.status().message()));
      continue;
    }
    if (!next->has_value()) break;
    out.push_back((*next)->has_hello() ? "hello" : Describe(**next));
  }
  return absl::StrJoin(out, ", ");
}

LinkRun RunLink(absl::string_view input) {
  LinkRun run;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) !=
      0) {
    run.broken = absl::StrCat("socketpair: ", strerror(errno));
    return run;
  }
  UniqueFd peer(fds[1]);
  Link link("hub");
  link.Attach(UniqueFd(fds[0]));
  // Queued before any peer: dropped when the first (new) one says Hello.
  for (int i = 0; i < 3; ++i) {
    Frame frame;
    frame.mutable_data()->set_session(1);
    frame.mutable_data()->set_data(absl::StrCat("queued ", i));
    link.Send(std::move(frame));
  }
  std::string bytes(input);
  const std::string placeholder(kInstancePlaceholder);
  for (size_t at = bytes.find(placeholder); at != std::string::npos;
       at = bytes.find(placeholder, at + placeholder.size())) {
    bytes.replace(at, placeholder.size(), link.instance());
  }

  bool met = false;
  uint64_t expected_seq = 1;
  Link::Handler handler;
  handler.peer = [&](const Hello&, bool resumed) {
    run.events.push_back(resumed ? "resumed" : "new peer");
    if (!resumed) {
      met = true;
      expected_seq = 1;
      if (link.unacked() != 0) {
        run.broken = "frames for the old peer kept for a new one";
      }
      // What an owner queues for a new peer: sent again on a resume.
      for (int i = 0; i < 2; ++i) {
        Frame frame;
        frame.mutable_open()->set_session(i + 1);
        link.Send(std::move(frame));
      }
    }
  };
  handler.frame = [&](Frame& frame) {
    run.events.push_back(Describe(frame));
    if (!met && run.broken.empty()) {
      run.broken = "a frame delivered before any peer's Hello";
    }
    if (frame.seq() == 0) return;
    if (frame.seq() != expected_seq && run.broken.empty()) {
      run.broken = absl::StrCat("frame ", frame.seq(), " delivered, ",
                                expected_seq, " expected");
    }
    expected_seq = frame.seq() + 1;
    if (frame.has_data() && link.unacked() < kMaxUnacked) {
      Frame credit;
      credit.mutable_credit()->set_session(frame.data().session());
      credit.mutable_credit()->set_bytes(frame.data().data().size());
      link.Send(std::move(credit));
    }
  };
  handler.garbage = [&](const absl::Status& error) {
    run.events.push_back(absl::StrCat("garbage: ", error.message()));
  };

  std::string output;
  char buffer[65536];
  // Writes what the link has queued and reads it from the peer's end.
  auto drain = [&]() -> std::string {
    for (int round = 0; round < 10000; ++round) {
      if (const absl::Status s = link.Flush(); !s.ok()) {
        return absl::StrCat("Flush: ", s.ToString());
      }
      for (;;) {
        const ssize_t n = read(peer.get(), buffer, sizeof(buffer));
        if (n <= 0) break;
        output.append(buffer, n);
      }
      if (!link.wants_write()) return "";
    }
    return "the output never drains";
  };

  Chunker chunker(input);  // Not `bytes`: the same chunks every run.
  for (size_t at = 0; at < bytes.size() && run.broken.empty();) {
    const size_t n = std::min(chunker.Next(65536), bytes.size() - at);
    const ssize_t wrote = write(peer.get(), bytes.data() + at, n);
    if (wrote < 0 && errno != EAGAIN && errno != EINTR) {
      run.broken = absl::StrCat("writing the input: ", strerror(errno));
      break;
    }
    if (wrote > 0) at += wrote;
    if (const absl::Status s = link.OnReadable(handler); !s.ok()) {
      run.broken = absl::StrCat("OnReadable: ", s.ToString());
      break;
    }
    if (std::string broken = drain(); !broken.empty()) run.broken = broken;
    if (link.unacked() > kMaxUnacked && run.broken.empty()) {
      run.broken = absl::StrCat(link.unacked(), " frames unacked");
    }
    if (output.size() > 4096 + kOutputPerInputByte * at && run.broken.empty()) {
      run.broken =
          absl::StrCat(output.size(), " bytes written for ", at, " read");
    }
  }
  if (!run.broken.empty()) return run;

  // What the link wrote must read as whole frames of its own kinds.
  FrameReader reader;
  reader.Feed(output);
  for (;;) {
    absl::StatusOr<std::optional<Frame>> next = reader.Next();
    if (!next.ok()) {
      run.broken =
          absl::StrCat("the link wrote a bad frame: ", next.status().message());
      return run;
    }
    if (!next->has_value()) break;
    const Frame& frame = **next;
    run.wrote.push_back(Describe(frame));
    // Its Hello from Attach, or (when that was still unwritten as the
    // peer's own came) its answer to the peer's.
    if (run.wrote.size() == 1 &&
        (!frame.has_hello() || frame.hello().instance() != link.instance())) {
      run.broken = "the link's output does not start with its Hello";
      return run;
    }
    if (frame.has_hello() && (frame.hello().role() != "hub" ||
                              frame.hello().version() != kProtocolVersion)) {
      run.broken = "the link wrote a Hello not its own";
      return run;
    }
    if (frame.seq() == 0 && !frame.has_hello() && !frame.has_error() &&
        frame.body_case() != Frame::BODY_NOT_SET) {
      run.broken = absl::StrCat("the link wrote a ", BodyName(frame),
                                " frame without a sequence number");
      return run;
    }
    if (frame.has_error() &&
        (frame.seq() != 0 || (frame.error().code() != Error::BAD_FRAME &&
                              frame.error().code() != Error::VERSION))) {
      run.broken = "the link wrote an error it has no reason for";
      return run;
    }
  }
  if (reader.buffered() != 0) {
    run.broken = absl::StrCat("the link's output ends ", reader.buffered(),
                              " bytes into a frame");
  }
  return run;
}

std::string BrokenChannelPromise(absl::string_view input) {
  if (std::string broken = BrokenReaderPromise(input); !broken.empty()) {
    return absl::StrCat("FrameReader: ", broken);
  }
  if (std::string broken = RunLink(input).broken; !broken.empty()) {
    return absl::StrCat("Link: ", broken);
  }
  return "";
}

}  // namespace fcvm::channel

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Frames with strings that are not UTF-8 are refused; protobuf would
  // also log each one.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string broken = fcvm::channel::BrokenChannelPromise(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!broken.empty()) {
    fprintf(stderr, "broken promise: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
