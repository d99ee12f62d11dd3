#include "runner/vmm/qemu/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::runner::qemu {

[[nodiscard]] absl::StatusOr<QmpClient> QmpClient::Connect(
    const std::string& socket_path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<UniqueFd> fd =
      ConnectUnixStreamWhenReady(socket_path, "QMP", timeout);
  if (!fd.ok()) return fd.status();
  QmpClient client(std::move(*fd), socket_path);
  ASSIGN_OR_RETURN(QmpMessage greeting, client.ReadMessage(deadline));
  if (!greeting.has_qmp()) {
    return absl::DataLossError(absl::StrCat(
        "QMP at ", socket_path, ": the first message is not a greeting"));
  }
  const auto& fields = greeting.qmp().struct_value().fields();
  if (auto v = fields.find("version"); v != fields.end()) {
    const auto& q = v->second.struct_value().fields().find("qemu");
    if (q != v->second.struct_value().fields().end()) {
      const auto& n = q->second.struct_value().fields();
      auto part = [&](const char* key) {
        auto it = n.find(key);
        return it == n.end() ? 0 : static_cast<int>(it->second.number_value());
      };
      client.version_ =
          absl::StrCat(part("major"), ".", part("minor"), ".", part("micro"));
    }
  }
  RETURN_IF_ERROR(client.Execute("qmp_capabilities", {}, timeout).status());
  return client;
}

[[nodiscard]] absl::Status QmpClient::Send(const QmpCommand& command, int fd) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(command, &json);
  json.push_back('\n');
  const std::string what = absl::StrCat("QMP at ", socket_path_);
  if (fd < 0) return WriteAll(fd_.get(), json, what);
  // The descriptor goes with the command's first byte; the rest after it.
  iovec first = {json.data(), 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message = {};
  message.msg_iov = &first;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&message);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t sent;
  do {
    sent = sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent != 1)
    return ErrnoStatus(absl::StrCat(what, ": sending a descriptor"));
  return WriteAll(fd_.get(), absl::string_view(json).substr(1), what);
}

[[nodiscard]] absl::StatusOr<QmpMessage> QmpClient::ReadMessage(
    absl::Time deadline) {
  for (;;) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      QmpMessage message;
      google::protobuf::util::JsonParseOptions options;
      // Newer QEMUs may add fields; what we read is typed above.
      options.ignore_unknown_fields = true;
      auto parsed =
          google::protobuf::util::JsonStringToMessage(line, &message, options);
      if (!parsed.ok()) {
        return absl::DataLossError(
            absl::StrCat("QMP at ", socket_path_, ": unreadable message '",
                         line, "': ", std::string(parsed.message())));
      }
      return message;
    }
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("QMP at ", socket_path_, ": no answer in time"));
    }
    pollfd pfd = {fd_.get(), POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(ms));
    if (ready < 0 && errno != EINTR) return ErrnoStatus("poll on QMP");
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(fd_.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("QMP at ", socket_path_, ": QEMU closed the socket"));
    }
    buffer_.append(chunk, n);
  }
}

[[nodiscard]] absl::StatusOr<google::protobuf::Value> QmpClient::Execute(
    const std::string& command, const google::protobuf::Struct& arguments,
    absl::Duration timeout) {
  QmpCommand request;
  request.set_execute(command);
  if (!arguments.fields().empty()) *request.mutable_arguments() = arguments;
  return Call(request, -1, absl::Now() + timeout);
}

[[nodiscard]] absl::Status QmpClient::SendFd(const std::string& name, int fd,
                                             absl::Duration timeout) {
  QmpCommand request;
  request.set_execute("getfd");
  (*request.mutable_arguments()->mutable_fields())["fdname"].set_string_value(
      name);
  return Call(request, fd, absl::Now() + timeout).status();
}

[[nodiscard]] absl::StatusOr<google::protobuf::Value> QmpClient::Call(
    const QmpCommand& sent, int fd, absl::Time deadline) {
  QmpCommand request = sent;
  const std::string& command = request.execute();
  request.set_id(absl::StrCat("fcvm-", ++next_id_));
  RETURN_IF_ERROR(Send(request, fd));
  for (;;) {
    ASSIGN_OR_RETURN(QmpMessage message, ReadMessage(deadline));
    if (!message.event().empty()) {
      events_.push_back(std::move(message));
      continue;
    }
    if (message.id() != request.id()) continue;  // A stale reply.
    if (message.has_error()) {
      return absl::FailedPreconditionError(
          absl::StrCat("QMP ", command, ": ", message.error().class_(), ": ",
                       message.error().desc()));
    }
    return message.return_();
  }
}

[[nodiscard]] absl::StatusOr<QmpMessage> QmpClient::WaitEvent(
    const std::string& name, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (it->event() == name) {
        QmpMessage found = std::move(*it);
        events_.erase(it);
        return found;
      }
    }
    ASSIGN_OR_RETURN(QmpMessage message, ReadMessage(deadline));
    if (!message.event().empty()) events_.push_back(std::move(message));
  }
}

std::vector<QmpMessage> QmpClient::TakeEvents() {
  std::vector<QmpMessage> events;
  events.swap(events_);
  return events;
}

}  // namespace fcvm::runner::qemu
