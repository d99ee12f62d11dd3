#ifndef FCVM_RUNNER_EXEC_CLIENT_H_
#define FCVM_RUNNER_EXEC_CLIENT_H_

// A client of a VM's hub (channel/channel.proto, the supervisor's end of
// the control channel): one Unix stream connection carrying sessions
// (exec, copy out, copy in, stat) to the VM's agent. It never blocks on the
// socket: frames for the hub are queued and written as the socket takes
// them, and whatever waits (for credit, output, the end) keeps reading.
// Single-threaded.

#include <poll.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "channel/channel.pb.h"
#include "channel/frame.h"

namespace fcvm::runner::exec {

// Whether `status` is a failure of the channel (no hub, the hub or the
// agent gone or refusing) rather than of the request: commands exit 125
// for those, as Podman does for its own failures.
bool IsChannelError(const absl::Status& status);

// What the hub said about the agent in its Hello.
struct HubHello {
  bool agent_up = false;
  std::string transport;  // "virtio-serial", "vsock".
  std::string agent_version;
};

class HubClient;

struct HubOptions {
  // Warnings about the link (an Error frame with session 0). Default:
  // "fcvm: warning: ..." on stderr.
  std::function<void(const std::string&)> warn;
  // How long Connect waits for the hub's Hello.
  absl::Duration hello_timeout = absl::Seconds(10);
};

// One session: created by HubClient::Open, ended by exactly one of Exit,
// Stated or Error (or the connection's loss). Destroying a session that
// has not ended sends Close, which kills its processes in the guest.
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint64_t id() const { return id_; }

  // STDIN bytes that may be sent now (each direction starts with
  // kWindowBytes; the agent's Credit frames give more).
  uint64_t stdin_credit() const { return stdin_credit_; }
  // Queues `bytes` (at most stdin_credit()) as STDIN Data frames of at most
  // kMaxDataBytes. Never waits.
  [[nodiscard]] absl::Status SendStdin(absl::string_view bytes);
  // SendStdin() of all of `bytes`, waiting for credit as needed (and
  // reading the hub meanwhile). Fails if the session ends first.
  [[nodiscard]] absl::Status WriteStdin(absl::string_view bytes);
  // The end of STDIN: Data{eof}.
  [[nodiscard]] absl::Status CloseStdin();

  // The oldest output chunk (STDOUT or STDERR) not yet taken; never waits.
  std::optional<channel::Data> TakeOutput();
  // TakeOutput(), waiting for a chunk; nullopt once the session has ended
  // and every chunk was taken.
  [[nodiscard]] absl::StatusOr<std::optional<channel::Data>> NextOutput();
  // The caller has written `bytes` of output where it goes: they are
  // credited to the agent (in batches; what is left goes before the client
  // waits).
  void Consumed(uint64_t bytes);

  [[nodiscard]] absl::Status Resize(uint32_t rows, uint32_t cols);
  [[nodiscard]] absl::Status Signal(int signo);

  // Started{id}'s id, once it came ("" before).
  const std::string& started_id() const { return started_id_; }
  bool ended() const { return end_.has_value(); }
  // Waits for the end. WaitExit: the Exit of an exec, copy out or copy in;
  // WaitStated: a stat's answer. An Error frame or the connection's loss
  // is returned as a status (IsChannelError). Output that arrives
  // meanwhile is kept: take it first, or the agent may wait for credit.
  [[nodiscard]] absl::StatusOr<channel::Exit> WaitExit();
  [[nodiscard]] absl::StatusOr<channel::Stated> WaitStated();

 private:
  friend class HubClient;
  Session(HubClient* client, uint64_t id) : client_(client), id_(id) {}
  // One round of the client's I/O; fails only if the session has not
  // ended and the connection failed.
  [[nodiscard]] absl::Status Wait();
  [[nodiscard]] absl::Status WaitEnd();

  HubClient* client_;
  uint64_t id_;
  uint64_t stdin_credit_ = channel::kWindowBytes;
  uint64_t uncredited_ = 0;  // Output consumed, not yet credited back.
  // Output received and not credited back: never more than the window
  // from an agent that keeps the protocol.
  uint64_t in_flight_ = 0;
  std::deque<channel::Data> output_;
  std::string started_id_;
  // The session's last frame (Exit, Stated, Error), or the connection's
  // loss.
  std::optional<absl::StatusOr<channel::Frame>> end_;
};

class HubClient {
 public:
  using Options = HubOptions;

  // Connects to `vm_dir`/channel.sock of the VM `vm_name` (named in
  // errors), sends our Hello and waits for the hub's.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HubClient>> Connect(
      const std::string& vm_dir, const std::string& vm_name,
      Options options = {});
  // The same over a connected stream socket.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HubClient>> Attach(
      UniqueFd fd, const std::string& vm_name, Options options = {});

  ~HubClient();
  HubClient(const HubClient&) = delete;
  HubClient& operator=(const HubClient&) = delete;

  const HubHello& hello() const { return hello_; }
  const std::string& vm_name() const { return vm_name_; }

  // Starts a session: `open` with its session number set to the next one
  // (1, 2, ...). The session must not outlive the client.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Session>> Open(
      channel::Open open);

  // One round of I/O: waits up to `timeout` (InfiniteDuration: no limit)
  // until the hub's socket or one of `extra` is ready (their revents are
  // set), then writes what is queued for the hub and reads and dispatches
  // what it sent. Before waiting, pending credits are sent. Fails once the
  // connection is lost or the hub breaks the protocol.
  [[nodiscard]] absl::Status Poll(absl::Span<pollfd> extra,
                                  absl::Duration timeout);

 private:
  friend class Session;
  HubClient(UniqueFd fd, std::string vm_name, Options options);

  [[nodiscard]] absl::Status Send(const channel::Frame& frame);
  [[nodiscard]] absl::Status Flush();
  [[nodiscard]] absl::Status ReadSome();
  [[nodiscard]] absl::Status Dispatch(const channel::Frame& frame);
  void Lose(const absl::Status& why);
  void SendCredits(bool all);
  Session* Find(uint64_t session);

  UniqueFd fd_;
  std::string vm_name_;
  Options options_;
  channel::FrameReader reader_;
  std::string out_;  // Encoded frames not yet written.
  size_t out_start_ = 0;
  bool got_hello_ = false;
  HubHello hello_;
  // The hub stopped reading (EPIPE): output is dropped, and reading goes
  // on until the hub's end of file says why.
  bool write_closed_ = false;
  absl::Status lost_;  // Non-OK once the connection is unusable.
  uint64_t next_session_ = 1;
  std::map<uint64_t, Session*> sessions_;
};

}  // namespace fcvm::runner::exec

#endif  // FCVM_RUNNER_EXEC_CLIENT_H_
