// Writes the fuzz target's seed inputs into the directory named by its one
// argument: frames made by EncodeFrame, and the garbage a peer may send.
// Run once; corpus_test holds each input's verdict.
#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"
#include "channel/fuzz/frame_fuzzer.h"

namespace fcvm::channel {
namespace {

constexpr char kAgent[] = "agent-instance-1";  // 16 bytes, as a real id.

std::string HelloBytes(bool reply, absl::string_view peer_instance = "",
                       uint64_t received = 0, uint32_t version = 1) {
  Frame frame;
  Hello& hello = *frame.mutable_hello();
  hello.set_version(version);
  hello.set_role("agent");
  hello.set_instance(kAgent);
  hello.set_peer_instance(std::string(peer_instance));
  hello.set_received(received);
  hello.set_reply(reply);
  hello.set_agent_version("0.1");
  return EncodeFrame(frame);
}

std::string DataBytes(uint64_t seq, uint64_t ack, absl::string_view bytes) {
  Frame frame;
  frame.set_seq(seq);
  frame.set_ack(ack);
  Data& data = *frame.mutable_data();
  data.set_session(1);
  data.set_stream(STDOUT);
  data.set_data(std::string(bytes));
  return EncodeFrame(frame);
}

std::string Header(uint8_t version, uint32_t length) {
  std::string out = "FCV";
  out += static_cast<char>(version);
  out += static_cast<char>(length >> 24);
  out += static_cast<char>(length >> 16);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length);
  return out;
}

std::map<std::string, std::string> Inputs() {
  std::map<std::string, std::string> inputs;
  inputs["hello"] = HelloBytes(true);
  inputs["hello_data"] =
      HelloBytes(true) +
      DataBytes(1, 0, std::string("binary FCV\x01\0\0\0\x02 inside", 22)) +
      DataBytes(2, 3, "second");
  inputs["empty_frame"] =
      EncodeFrame(Frame()) + HelloBytes(false) + EncodeFrame(Frame());
  // A new peer, then the same peer again after a reset: resumed.
  inputs["resumed"] = HelloBytes(false) + DataBytes(1, 0, "one") +
                      HelloBytes(true, kInstancePlaceholder, 1) +
                      DataBytes(1, 0, "one again") + DataBytes(2, 2, "two");
  inputs["garbage_then_hello"] = absl::StrCat(
      HelloBytes(false), "GET / HTTP/1.1\r\n\r\n", DataBytes(1, 0, "lost"),
      HelloBytes(true, kInstancePlaceholder, 0), DataBytes(1, 0, "one"),
      DataBytes(2, 0, "two"));
  {
    const std::string payload =
        HelloBytes(true).substr(kHeaderBytes);  // Any payload.
    inputs["wrong_version"] =
        Header(2, payload.size()) + payload + HelloBytes(true);
  }
  inputs["too_long"] = HelloBytes(false) + Header(1, kMaxPayloadBytes + 1) +
                       HelloBytes(true, kInstancePlaceholder);
  inputs["not_a_frame"] =
      HelloBytes(false) + Header(1, 2) + "\xff\xff" + HelloBytes(true);
  {
    Frame error;
    error.mutable_error()->set_code(Error::BAD_FRAME);
    error.mutable_error()->set_message("agent: bad frame: no FCV header");
    inputs["bad_frame_error"] = HelloBytes(false) + EncodeFrame(error) +
                                HelloBytes(false, kInstancePlaceholder);
  }
  inputs["gap"] = HelloBytes(false) + DataBytes(1, 0, "one") +
                  DataBytes(3, 0, "three") +
                  HelloBytes(false, kInstancePlaceholder, 1) +
                  DataBytes(2, 0, "two") + DataBytes(3, 0, "three");
  inputs["version_hello"] =
      HelloBytes(true, "", 0, 2) + HelloBytes(true, "", 0, 1);
  inputs["partial_magic"] = absl::StrCat(
      "xxFCVFCFCV\x02", HelloBytes(false).substr(0, 3), "FC", HelloBytes(true));
  return inputs;
}

}  // namespace
}  // namespace fcvm::channel

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_corpus DIRECTORY\n");
    return 2;
  }
  for (const auto& [name, bytes] : fcvm::channel::Inputs()) {
    const absl::Status written =
        fcvm::WriteFileAtomically(absl::StrCat(argv[1], "/", name), bytes, 0644,
                                  fcvm::Durability::kUnsynced);
    if (!written.ok()) {
      fprintf(stderr, "%s\n", written.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
