#include "base/logging.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <string>

#include "absl/strings/str_format.h"
#include "base/eintr.h"

namespace fcvm {
namespace {

std::atomic<LogSink*> g_sink{nullptr};
std::atomic<int> g_min_severity{0};

constexpr char kSeverityLetters[] = "IWEF";

// The file's base name: logs name "status.cc", not the sandbox path.
absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.find_last_of('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

void WriteToStderr(absl::string_view line) {
  std::string buf(line);
  buf.push_back('\n');
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    ssize_t n = RetryEintr([&] { return ::write(STDERR_FILENO, p, left); });
    if (n <= 0) return;  // Nowhere left to report a logging failure.
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

LogSink* SetLogSink(LogSink* sink) { return g_sink.exchange(sink); }

void SetMinLogSeverity(LogSeverity severity) {
  g_min_severity.store(static_cast<int>(severity));
}

namespace logging_internal {

LogMessage::LogMessage(const char* file, int line, LogSeverity severity)
    : file_(file), line_(line), severity_(severity) {}

LogMessage::~LogMessage() {
  const bool fatal = severity_ == LogSeverity::kFatal;
  if (fatal || static_cast<int>(severity_) >= g_min_severity.load()) {
    struct timeval tv;
    ::gettimeofday(&tv, nullptr);
    struct tm tm;
    ::localtime_r(&tv.tv_sec, &tm);
    std::string text = absl::StrFormat(
        "%c%02d%02d %02d:%02d:%02d.%06d %d %s:%d] %s",
        kSeverityLetters[static_cast<int>(severity_)], tm.tm_mon + 1,
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        static_cast<int>(tv.tv_usec), static_cast<int>(::getpid()),
        BaseName(file_), line_, stream_.str());
    LogSink* sink = g_sink.load();
    if (sink != nullptr) sink->Send(severity_, text);
    // A fatal message also reaches stderr: it is the last thing said.
    if (sink == nullptr || fatal) WriteToStderr(text);
  }
  if (fatal) std::abort();
}

}  // namespace logging_internal
}  // namespace fcvm
