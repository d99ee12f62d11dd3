#ifndef FCVM_RUNNER_VM_CONTROL_H_
#define FCVM_RUNNER_VM_CONTROL_H_

// The supervisor's control socket: how `fcvm pause` and `fcvm resume` ask
// the VM's one owner to act (it alone talks to the VMM and writes the
// state). One request line, one reply line (control.proto).

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/vm/control.pb.h"

namespace fcvm::runner {

inline constexpr char kControlSocket[] = "control.sock";

// One request; the longest line either side accepts.
inline constexpr size_t kMaxControlLine = 4096;

// Parses a request line; InvalidArgument naming what is wrong (not JSON,
// an unknown field, no action).
[[nodiscard]] absl::StatusOr<ControlRequest> ParseControlRequest(
    const std::string& line);

// The reply as its line (newline included).
std::string ControlReplyLine(const ControlReply& reply);

// Sends `request` to the supervisor of the VM in `dir` and returns its
// reply. Unavailable when no supervisor listens (the VM is not running).
[[nodiscard]] absl::StatusOr<ControlReply> SendControl(
    const std::string& dir, const ControlRequest& request,
    absl::Duration timeout = absl::Seconds(30));

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_CONTROL_H_
