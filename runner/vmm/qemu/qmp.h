#ifndef FCVM_RUNNER_VMM_QEMU_QMP_H_
#define FCVM_RUNNER_VMM_QEMU_QMP_H_

// A QMP client over QEMU's Unix socket: reads the greeting, negotiates
// capabilities, executes commands and keeps the events that arrive
// in between (SHUTDOWN, STOP, ...).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "google/protobuf/struct.pb.h"
#include "runner/vmm/qemu/qmp.pb.h"

namespace fcvm::runner::qemu {

class QmpClient {
 public:
  // Connects (retrying until `timeout`: QEMU creates the socket a moment
  // after it starts) and enters command mode.
  [[nodiscard]] static absl::StatusOr<QmpClient> Connect(
      const std::string& socket_path, absl::Duration timeout);

  // The reply's "return" value, or the QMP error (class and description)
  // naming the command.
  [[nodiscard]] absl::StatusOr<google::protobuf::Value> Execute(
      const std::string& command,
      const google::protobuf::Struct& arguments = {},
      absl::Duration timeout = absl::Seconds(10));

  // Hands `fd` to QEMU under `name` (QMP getfd: the descriptor rides along
  // as SCM_RIGHTS), for URIs like "fd:NAME". QEMU has its own copy after.
  [[nodiscard]] absl::Status SendFd(const std::string& name, int fd,
                                    absl::Duration timeout = absl::Seconds(10));

  // Waits for an event named `name` (one already received counts).
  [[nodiscard]] absl::StatusOr<QmpMessage> WaitEvent(const std::string& name,
                                                     absl::Duration timeout);

  // The QEMU version the greeting announced, e.g. "7.2.22".
  const std::string& version() const { return version_; }
  std::vector<QmpMessage> TakeEvents();

 private:
  QmpClient(UniqueFd fd, std::string socket_path)
      : fd_(std::move(fd)), socket_path_(std::move(socket_path)) {}
  [[nodiscard]] absl::StatusOr<QmpMessage> ReadMessage(absl::Time deadline);
  [[nodiscard]] absl::Status Send(const QmpCommand& command, int fd = -1);
  [[nodiscard]] absl::StatusOr<google::protobuf::Value> Call(
      const QmpCommand& request, int fd, absl::Time deadline);

  UniqueFd fd_;
  std::string socket_path_;
  std::string buffer_;
  std::string version_;
  std::vector<QmpMessage> events_;
  int next_id_ = 0;
};

}  // namespace fcvm::runner::qemu

#endif  // FCVM_RUNNER_VMM_QEMU_QMP_H_
