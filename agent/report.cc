#include "agent/report.h"

#include <sys/socket.h>
#include <time.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::agent {

std::string FrameLine(absl::string_view kind, absl::string_view text) {
  std::string line = absl::StrCat(kFramePrefix, kind, " ");
  line.reserve(line.size() + text.size() + 1);
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      absl::StrAppendFormat(&line, "\\x%02x", c);
    } else if (c == '\\') {
      // Doubled, so a literal "\x1b" in the text is not read as an escape.
      line.append("\\\\");
    } else {
      line.push_back(static_cast<char>(c));
    }
  }
  line.push_back('\n');
  return line;
}

std::string UnescapeFrameText(absl::string_view text) {
  auto hex = [](char c) {
    return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const absl::string_view rest = text.substr(i);
    if (absl::StartsWith(rest, "\\\\")) {
      out.push_back('\\');
      i += 1;
    } else if (rest.size() >= 4 && absl::StartsWith(rest, "\\x") &&
               absl::ascii_isxdigit(rest[2]) && absl::ascii_isxdigit(rest[3])) {
      out.push_back(static_cast<char>(hex(rest[2]) * 16 + hex(rest[3])));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string FrameEvent(const AgentEvent& event) {
  std::string json;
  // A message of scalars and strings always converts.
  (void)google::protobuf::util::MessageToJsonString(event, &json);
  return FrameLine("status", json);
}

bool ParseFrame(absl::string_view line, std::string* kind,
                std::string* payload) {
  line = absl::StripSuffix(absl::StripSuffix(line, "\n"), "\r");
  if (!absl::ConsumePrefix(&line, kFramePrefix)) return false;
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos || space == 0) return false;
  *kind = std::string(line.substr(0, space));
  *payload = UnescapeFrameText(line.substr(space + 1));
  return true;
}

uint64_t UptimeMs() {
  timespec now = {};
  clock_gettime(CLOCK_BOOTTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void Reporter::Event(AgentEvent event) {
  event.set_uptime_ms(UptimeMs());
  Send(FrameEvent(event));
}

void Reporter::Output(absl::string_view kind, absl::string_view line) {
  Send(FrameLine(kind, line));
}

void Reporter::Send(const std::string& line) {
  // The console is the record: a failure there has nowhere to be reported.
  (void)WriteAll(console_fd_, line, "console");
  if (stream_.valid() && !WriteAll(stream_.get(), line, "vsock").ok()) {
    stream_.reset();
  }
}

}  // namespace fcvm::agent
