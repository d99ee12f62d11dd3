#ifndef FCVM_RUNNER_VM_CONSOLE_H_
#define FCVM_RUNNER_VM_CONSOLE_H_

// The VM's serial console as the supervisor reads it: every byte to
// console.log; lines split out; the agent's framed lines (agent/report.h)
// decoded: status events to a callback, the container's output to
// container.log. A line is cut at kMaxLine bytes when no newline comes, so
// a guest that never sends one cannot grow the supervisor's memory.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/status.pb.h"
#include "runner/vm/log_file.h"

namespace fcvm::runner {

class ConsoleReader {
 public:
  static constexpr size_t kMaxLine = 64 << 10;

  ConsoleReader(RotatingLog console, RotatingLog container,
                std::function<void(const agent::AgentEvent&)> on_event)
      : console_(std::move(console)),
        container_(std::move(container)),
        on_event_(std::move(on_event)) {}

  // Bytes as they came from the console. Errors are the logs' (a full
  // disk); lines are still decoded.
  [[nodiscard]] absl::Status Feed(absl::string_view data);
  // The end of the console: a last line without its newline is decoded.
  [[nodiscard]] absl::Status Finish();

  size_t buffered() const { return partial_.size(); }
  int cut_lines() const { return cut_lines_; }

 private:
  [[nodiscard]] absl::Status OnLine(absl::string_view line);

  RotatingLog console_;
  RotatingLog container_;
  std::function<void(const agent::AgentEvent&)> on_event_;
  std::string partial_;
  int cut_lines_ = 0;
};

}  // namespace fcvm::runner

#endif  // FCVM_RUNNER_VM_CONSOLE_H_
