#include "runner/vm/control.h"

#include <poll.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::runner {

[[nodiscard]] absl::StatusOr<ControlRequest> ParseControlRequest(
    const std::string& line) {
  ControlRequest request;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(line, &request);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("control request: ", std::string(parsed.message())));
  }
  if (request.action_case() == ControlRequest::ACTION_NOT_SET) {
    return absl::InvalidArgumentError("control request: no action");
  }
  return request;
}

std::string ControlReplyLine(const ControlReply& reply) {
  std::string json;
  // A message of strings and a bool always prints.
  (void)google::protobuf::util::MessageToJsonString(reply, &json);
  return absl::StrCat(json, "\n");
}

[[nodiscard]] absl::StatusOr<ControlReply> SendControl(
    const std::string& dir, const ControlRequest& request,
    absl::Duration timeout) {
  const std::string path = absl::StrCat(dir, "/", kControlSocket);
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixStream(path, "the VM's supervisor"));
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(request, &json);
  RETURN_IF_ERROR(WriteAll(fd.get(), absl::StrCat(json, "\n"), path));
  const absl::Time deadline = absl::Now() + timeout;
  std::string line;
  while (line.find('\n') == std::string::npos) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("the VM's supervisor did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    pollfd pfd = {fd.get(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[1024];
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          "the VM's supervisor closed the connection without an answer");
    }
    line.append(buffer, n);
    if (line.size() > kMaxControlLine) {
      return absl::DataLossError("the VM's supervisor answered too much");
    }
  }
  ControlReply reply;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(
           line.substr(0, line.find('\n')), &reply, options)
           .ok()) {
    return absl::DataLossError(absl::StrCat("the VM's supervisor answered '",
                                            line.substr(0, 200), "'"));
  }
  return reply;
}

}  // namespace fcvm::runner
