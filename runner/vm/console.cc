#include "runner/vm/console.h"

#include "absl/strings/str_cat.h"
#include "agent/report.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::runner {

[[nodiscard]] absl::Status ConsoleReader::OnLine(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string kind, payload;
  if (!agent::ParseFrame(line, &kind, &payload)) return absl::OkStatus();
  if (kind == "status") {
    agent::AgentEvent event;
    google::protobuf::util::JsonParseOptions options;
    // A newer agent may say more; what we act on is typed.
    options.ignore_unknown_fields = true;
    if (google::protobuf::util::JsonStringToMessage(payload, &event, options)
            .ok()) {
      on_event_(event);
    }
    return absl::OkStatus();
  }
  if (kind == "out" || kind == "err") {
    return container_.Write(absl::StrCat(payload, "\n"));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ConsoleReader::Feed(absl::string_view data) {
  absl::Status status = console_.Write(data);
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    const absl::string_view piece = data.substr(
        0, newline == absl::string_view::npos ? data.size() : newline);
    const size_t room = kMaxLine - partial_.size();
    if (piece.size() > room) {
      // No newline within kMaxLine: cut the line here.
      partial_.append(piece.data(), room);
      status.Update(OnLine(partial_));
      partial_.clear();
      ++cut_lines_;
      data.remove_prefix(room);
      continue;
    }
    partial_.append(piece.data(), piece.size());
    if (newline == absl::string_view::npos) break;
    status.Update(OnLine(partial_));
    partial_.clear();
    data.remove_prefix(newline + 1);
  }
  return status;
}

[[nodiscard]] absl::Status ConsoleReader::Finish() {
  if (partial_.empty()) return absl::OkStatus();
  absl::Status status = OnLine(partial_);
  partial_.clear();
  return status;
}

}  // namespace fcvm::runner
