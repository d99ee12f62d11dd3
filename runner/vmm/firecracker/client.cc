#include "runner/vmm/firecracker/client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "runner/vmm/firecracker/api.pb.h"

namespace fcvm::runner::firecracker {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// Firecracker's {"fault_message": "..."}, or the body as it came.
std::string FaultMessage(const std::string& body) {
  Error error;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (google::protobuf::util::JsonStringToMessage(body, &error, options).ok() &&
      error.has_fault_message()) {
    return error.fault_message();
  }
  return body.empty() ? "(no message)" : body;
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> ApiClient::Send(
    const ApiRequest& request, absl::Duration timeout) const {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string what = absl::StrCat(request.method, " ", request.path);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const char* header :
       {"Content-Type: application/json", "Accept: application/json"}) {
    headers.reset(curl_slist_append(headers.release(), header));
  }
  const std::string url = absl::StrCat("http://localhost", request.path);
  std::string response;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (!request.body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(request.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(what, ": Firecracker's API at ",
                                               socket_path_, ": ",
                                               curl_easy_strerror(code)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return response;
  // The body is not quoted: PUT /mmds carries the plan, with the
  // environment and entropy.
  const std::string message =
      absl::StrCat("Firecracker refused ", what, " (HTTP ", status,
                   "): ", FaultMessage(response));
  return status == 400 ? absl::InvalidArgumentError(message)
                       : absl::InternalError(message);
}

[[nodiscard]] absl::Status ApiClient::WaitReady(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(2);
  for (;;) {
    absl::StatusOr<std::string> info = Send({"GET", "/", ""}, absl::Seconds(1));
    if (info.ok()) return absl::OkStatus();
    if (absl::Now() + pause > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "Firecracker's API did not answer within ",
          absl::FormatDuration(timeout), ": ", info.status().message()));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

}  // namespace fcvm::runner::firecracker
