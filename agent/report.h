#ifndef FCVM_AGENT_REPORT_H_
#define FCVM_AGENT_REPORT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/status.pb.h"
#include "base/unique_fd.h"

namespace fcvm::agent {

// The agent's framing on the console (and on a vsock stream where the VM
// has one): every line it writes starts with "@fcvm ", then a kind:
//   @fcvm status {"kind":"READY",...}   an AgentEvent in protobuf JSON
//   @fcvm out <text>                    a line of the container's stdout
//   @fcvm err <text>                    ... of its stderr
//   @fcvm log <text>                    the agent's own diagnostics
// Kernel messages never start with the prefix, and container text can
// never put it at the start of a line. In the text, control characters
// (but tab) are escaped as \xNN and a backslash is doubled, so one
// container line stays one console line and ParseFrame gives back exactly
// the bytes that were framed.
inline constexpr absl::string_view kFramePrefix = "@fcvm ";

// One framed line, newline included.
std::string FrameLine(absl::string_view kind, absl::string_view text);
std::string FrameEvent(const AgentEvent& event);

// Splits "@fcvm <kind> <text>" back, the text unescaped (for "status",
// the event's JSON); false for any other line (kernel messages). A
// trailing "\r" or "\n" is the console's, not the text's. For the host
// side and tests.
bool ParseFrame(absl::string_view line, std::string* kind,
                std::string* payload);

// The text of a frame back to the bytes FrameLine was given: "\\" is a
// backslash, "\xNN" the byte NN. Any other backslash (from an agent that
// did not double them) is kept as it stands.
std::string UnescapeFrameText(absl::string_view text);

// Writes framed lines to the console and, when connected, a vsock stream.
// Each line goes out in one write(2), so lines from the agent never
// interleave with each other.
class Reporter {
 public:
  explicit Reporter(int console_fd) : console_fd_(console_fd) {}

  // Also send every line over `stream` (vsock to the host). A failed write
  // drops the stream; the console keeps everything.
  void AttachStream(UniqueFd stream) { stream_ = std::move(stream); }
  bool has_stream() const { return stream_.valid(); }
  int stream_fd() const { return stream_.get(); }
  void DropStream() { stream_.reset(); }

  // Fills uptime_ms.
  void Event(AgentEvent event);
  void Output(absl::string_view kind, absl::string_view line);
  void Log(absl::string_view text) { Output("log", text); }

 private:
  void Send(const std::string& line);

  int console_fd_;
  UniqueFd stream_;
};

// Milliseconds since boot (CLOCK_BOOTTIME).
uint64_t UptimeMs();

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_REPORT_H_
