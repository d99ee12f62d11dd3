#ifndef FCVM_BASE_LOGGING_H_
#define FCVM_BASE_LOGGING_H_

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

// Minimal glog-style logging (abseil 20220623 has no absl/log):
//   LOG(INFO) << "booted " << name << " in " << ms << " ms";
//   CHECK(fd >= 0) << "invariant broken";
// Lines go to stderr as "I1122 21:35:01.123456 12345 file.cc:42] text", each
// in a single write so concurrent threads and processes do not interleave.
// LOG(FATAL) and failed CHECKs abort. CHECK is for true invariants only:
// anything the user or the environment can cause returns a status instead.

namespace fcvm {

enum class LogSeverity { kInfo = 0, kWarning = 1, kError = 2, kFatal = 3 };

// Receives every formatted log line (no trailing newline). Tests install one
// to capture output; the default writes to stderr.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Send(LogSeverity severity, absl::string_view line) = 0;
};

// Installs `sink` (not owned; nullptr restores stderr) and returns the old.
LogSink* SetLogSink(LogSink* sink);

// Messages below `severity` are dropped (FATAL always goes through).
void SetMinLogSeverity(LogSeverity severity);

namespace logging_internal {

class LogMessage {
 public:
  LogMessage(const char* file, int line, LogSeverity severity);
  ~LogMessage();  // Sends the line; aborts for kFatal.
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Lets `CHECK(x) << ...` compile to a no-op branch when x holds.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace logging_internal
}  // namespace fcvm

#define FCVM_LOG_INFO ::fcvm::LogSeverity::kInfo
#define FCVM_LOG_WARNING ::fcvm::LogSeverity::kWarning
#define FCVM_LOG_ERROR ::fcvm::LogSeverity::kError
#define FCVM_LOG_FATAL ::fcvm::LogSeverity::kFatal

#define LOG(severity)                                       \
  ::fcvm::logging_internal::LogMessage(__FILE__, __LINE__,  \
                                       FCVM_LOG_##severity) \
      .stream()

#define CHECK(condition)                              \
  (condition) ? (void)0                               \
              : ::fcvm::logging_internal::Voidify() & \
                    LOG(FATAL) << "Check failed: " #condition " "

#endif  // FCVM_BASE_LOGGING_H_
