#ifndef FCVM_RUNNER_EXEC_TESTING_FAKE_HUB_H_
#define FCVM_RUNNER_EXEC_TESTING_FAKE_HUB_H_

// A VM's hub for the client's tests: it listens on DIR/channel.sock as
// the supervisor does, answers the client's Hello as the hub does, and
// hands each connection to the test's `serve` (on a thread of its own),
// which plays the agent's part through Connection. It holds the client to
// the protocol and fails the test (ADD_FAILURE, and violations()) when the
// client breaks it: STDIN beyond its credit, Data over kMaxDataBytes, seq
// or ack set, no Hello first. Its own output waits for the client's
// credit, as the agent's does.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"

namespace fcvm::runner::exec::testing {

class FakeHub {
 public:
  // One client connection, from the agent's side of the hub.
  class Connection {
   public:
    // The next frame from the client that is not a Credit (those are
    // applied to the sessions' output windows); nullopt once the client
    // hung up, or after 20 s of silence (a violation).
    std::optional<channel::Frame> Next();
    void Send(const channel::Frame& frame);
    // Output, split into kMaxDataBytes frames, each sent once the client's
    // credit allows (frames that come meanwhile are kept for Next()).
    void SendData(uint64_t session, channel::Stream stream,
                  absl::string_view bytes, bool eof = false);
    // The agent wrote `bytes` of the session's STDIN: credits them back.
    void Credit(uint64_t session, uint64_t bytes);
    void Started(uint64_t session, const std::string& id);
    void Error(uint64_t session, channel::Error::Code code,
               const std::string& message);
    // Data{eof} on STDOUT and STDERR, then `exit`: how an exec ends.
    void Finish(uint64_t session, channel::Exit exit);
    // Bytes of STDIN received and not yet credited.
    uint64_t uncredited_stdin(uint64_t session) { return in_[session].used; }

   private:
    friend class FakeHub;
    struct Window {
      uint64_t used = 0;  // Sent and not yet credited.
    };
    Connection(FakeHub* hub, UniqueFd fd) : hub_(hub), fd_(std::move(fd)) {}
    std::optional<channel::Frame> ReadFrame();

    FakeHub* hub_;
    UniqueFd fd_;
    channel::FrameReader reader_;
    std::vector<channel::Frame> kept_;
    std::map<uint64_t, Window> in_;   // STDIN from the client.
    std::map<uint64_t, Window> out_;  // Our output.
    bool hung_up_ = false;
  };

  using Serve = std::function<void(Connection&)>;
  struct Options {
    bool agent_up = true;
    // Connections served (one after the other) before the hub stops
    // accepting.
    int connections = 1;
  };

  // Listens on `dir`/channel.sock (`dir` must be short: sun_path).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeHub>> Start(
      const std::string& dir, Serve serve, Options options);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeHub>> Start(
      const std::string& dir, Serve serve) {
    return Start(dir, std::move(serve), Options());
  }
  // Waits for the connections being served to end; removes the socket.
  ~FakeHub();

  std::vector<std::string> violations() const;
  // The client's Hello on the last connection.
  channel::Hello client_hello() const;

 private:
  FakeHub(std::string path, UniqueFd listener, Pipe wake, Serve serve,
          Options options);
  void Run();
  void Violation(const std::string& what);

  std::string path_;
  UniqueFd listener_;
  Pipe wake_;
  Serve serve_;
  Options options_;
  mutable std::mutex mutex_;
  std::vector<std::string> violations_;
  channel::Hello client_hello_;
  std::thread thread_;
};

}  // namespace fcvm::runner::exec::testing

#endif  // FCVM_RUNNER_EXEC_TESTING_FAKE_HUB_H_
