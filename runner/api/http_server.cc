#include "runner/api/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fcvm::runner::api {

struct HttpServer::Context {
  HttpServer* server = nullptr;
  Handler handler;
  ServerOptions options;

  void Log(const std::string& line) const {
    const std::string full =
        absl::StrCat("fcvm api (", options.name, "): ", line);
    if (options.log) {
      options.log(full);
    } else {
      std::cerr << full << "\n";
    }
  }
};

namespace {

// A refused chunked body is read and dropped up to this much before the
// connection is cut instead of answered.
constexpr uint64_t kMaxDroppedBytes = 256ull << 20;

// One request while its body arrives.
struct PendingRequest {
  Request request;
  bool refused = false;   // Over the limit: answered 413.
  uint64_t dropped = 0;   // Bytes of a refused chunked body read so far.
  bool answered = false;  // The 413 is queued already (at the headers).
};

// A streaming response's state, owned by the library's response object.
struct StreamState {
  std::unique_ptr<BodySource> source;
  const HttpServer* server = nullptr;
  const HttpServer::Context* context = nullptr;
  int connection_fd = -1;
  std::string pending;
  size_t offset = 0;
  bool last = false;  // The source said the body ends after `pending`.
};

MHD_Result CollectPair(void* cls, MHD_ValueKind, const char* key,
                       const char* value) {
  auto* list = static_cast<HeaderList*>(cls);
  list->emplace_back(key == nullptr ? "" : key, value == nullptr ? "" : value);
  return MHD_YES;
}

std::string PeerOf(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "unknown";
  const sockaddr* addr = info->client_addr;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(v4->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(v6->sin6_port));
  }
  return "unix";
}

// Whether the client hung up (checked while a stream has nothing to send).
bool PeerGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

ssize_t ReadStream(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  auto* s = static_cast<StreamState*>(cls);
  while (s->offset == s->pending.size()) {
    if (s->last) return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->server->stopping() || PeerGone(s->connection_fd)) {
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    s->pending.clear();
    s->offset = 0;
    absl::StatusOr<bool> more = s->source->Next(&s->pending);
    if (!more.ok()) {
      s->context->Log(absl::StrCat("a streamed response was cut short: ",
                                   more.status().message()));
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!*more) s->last = true;
  }
  const size_t n = std::min(max, s->pending.size() - s->offset);
  std::memcpy(buf, s->pending.data() + s->offset, n);
  s->offset += n;
  return static_cast<ssize_t>(n);
}

void FreeStream(void* cls) { delete static_cast<StreamState*>(cls); }

MHD_Result Queue(MHD_Connection* connection, Response response,
                 const HttpServer::Context& context, bool close) {
  MHD_Response* out = nullptr;
  if (response.stream != nullptr) {
    auto* state = new StreamState;
    state->source = std::move(response.stream);
    state->server = context.server;
    state->context = &context;
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info != nullptr) state->connection_fd = info->connect_fd;
    out = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 << 10,
                                            &ReadStream, state, &FreeStream);
    if (out == nullptr) {
      delete state;
      return MHD_NO;
    }
  } else {
    out = MHD_create_response_from_buffer(
        response.body.size(), response.body.data(), MHD_RESPMEM_MUST_COPY);
    if (out == nullptr) return MHD_NO;
  }
  for (const auto& [name, value] : response.headers) {
    MHD_add_response_header(out, name.c_str(), value.c_str());
  }
  if (close) MHD_add_response_header(out, "Connection", "close");
  const MHD_Result result = MHD_queue_response(
      connection, static_cast<unsigned>(response.status), out);
  MHD_destroy_response(out);
  return result;
}

Response TooLarge(const ServerOptions& options) {
  const std::string message =
      absl::StrCat("the request body is larger than this server takes (",
                   options.max_body_bytes, " bytes)");
  if (options.error_response) return options.error_response(413, message);
  return Response::Bytes(413, "text/plain", message + "\n");
}

MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url,
                     const char* method, const char* /*version*/,
                     const char* upload_data, size_t* upload_data_size,
                     void** req_cls) {
  auto* context = static_cast<HttpServer::Context*>(cls);
  auto* pending = static_cast<PendingRequest*>(*req_cls);
  if (pending == nullptr) {
    pending = new PendingRequest;
    *req_cls = pending;
    Request& request = pending->request;
    request.method = method;
    request.path = url;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectPair,
                              &request.headers);
    for (auto& [name, value] : request.headers) absl::AsciiStrToLower(&name);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectPair,
                              &request.query);
    request.peer = PeerOf(connection);
    // A declared length over the limit is refused before a byte of the
    // body is read (and before "100 Continue").
    uint64_t declared = 0;
    const std::string* length = request.Header("content-length");
    if (length != nullptr && absl::SimpleAtoi(*length, &declared) &&
        declared > context->options.max_body_bytes) {
      pending->refused = true;
      pending->answered = true;
      context->Log(absl::StrCat(request.peer, " ", request.method, " ",
                                request.path, ": body of ", declared,
                                " bytes refused"));
      return Queue(connection, TooLarge(context->options), *context, true);
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    const size_t size = *upload_data_size;
    *upload_data_size = 0;
    std::string& body = pending->request.body;
    if (pending->refused) {
      // libmicrohttpd cannot answer in the middle of a chunked body: the
      // rest is read and dropped, then refused (below), up to a bound past
      // which the connection is cut.
      pending->dropped += size;
      return pending->dropped > kMaxDroppedBytes ? MHD_NO : MHD_YES;
    }
    if (body.size() + size > context->options.max_body_bytes) {
      pending->refused = true;
      pending->dropped = body.size() + size;
      body.clear();
      body.shrink_to_fit();
      return MHD_YES;
    }
    body.append(upload_data, size);
    return MHD_YES;
  }
  if (pending->refused) {
    if (pending->answered) return MHD_YES;
    context->Log(absl::StrCat(pending->request.peer, " ",
                              pending->request.method, " ",
                              pending->request.path, ": a chunked body of ",
                              pending->dropped, " bytes refused"));
    pending->answered = true;
    return Queue(connection, TooLarge(context->options), *context, true);
  }
  return Queue(connection, context->handler(pending->request), *context, false);
}

void OnCompleted(void* /*cls*/, MHD_Connection* /*connection*/, void** req_cls,
                 MHD_RequestTerminationCode /*toe*/) {
  delete static_cast<PendingRequest*>(*req_cls);
  *req_cls = nullptr;
}

void OnLibraryLog(void* cls, const char* format, va_list args) {
  char line[1024];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  static_cast<const HttpServer::Context*>(cls)->Log(text);
}

}  // namespace

const std::string* Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

const std::string* Request::Query(absl::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return &value;
  }
  return nullptr;
}

Response Response::Bytes(int status, std::string content_type,
                         std::string body) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::move(content_type));
  response.body = std::move(body);
  return response;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    Listener listener, Handler handler, ServerOptions options) {
  std::unique_ptr<HttpServer> server(new HttpServer);
  server->address_ = listener.address;
  server->context_ = std::make_unique<Context>();
  server->context_->server = server.get();
  server->context_->handler = std::move(handler);
  server->context_->options = std::move(options);
  const ServerOptions& opts = server->context_->options;
  const unsigned timeout_s = static_cast<unsigned>(
      std::max<int64_t>(1, absl::ToInt64Seconds(opts.idle_timeout)));
  // The daemon borrows the socket: MHD_quiesce_daemon hands it back at
  // the end, and the listener's UniqueFd closes it then.
  const int fd = listener.fd.get();
  server->daemon_ = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
      0, nullptr, nullptr, &OnRequest, server->context_.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &OnLibraryLog, server->context_.get(),
      MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
      opts.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      opts.max_header_bytes, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
      MHD_OPTION_THREAD_STACK_SIZE, static_cast<size_t>(512 << 10),
      MHD_OPTION_NOTIFY_COMPLETED, &OnCompleted, nullptr, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::InternalError(absl::StrCat(
        "fcvm api (", opts.name, "): the HTTP server on ",
        listener.address.ToString(), " did not start (libmicrohttpd)"));
  }
  server->socket_file_owner_ = std::move(listener);
  return server;
}

HttpServer::~HttpServer() {
  stopping_.store(true);
  if (daemon_ != nullptr) {
    const MHD_socket returned = MHD_quiesce_daemon(daemon_);
    if (returned != socket_file_owner_.fd.get()) {
      // The daemon closed it already (or never had it): do not close a
      // number that may belong to someone else by now.
      (void)socket_file_owner_.fd.release();
    }
    MHD_stop_daemon(daemon_);
  }
  socket_file_owner_.fd.reset();
  RemoveSocketFile(socket_file_owner_);
}

}  // namespace fcvm::runner::api
