#include "rootfs/lock/fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <mutex>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/sha256.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

size_t WriteToFile(char* data, size_t size, size_t count, void* file) {
  return fwrite(data, size, count, static_cast<FILE*>(file)) * size;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

}  // namespace

[[nodiscard]] absl::Status FetchToFile(const std::string& url,
                                       const std::string& path,
                                       const FetchOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string context = absl::StrCat(
      "fetching ", options.what.empty() ? path : options.what, " from ", url);

  std::string temp = absl::StrCat(path, ".part.XXXXXX");
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Annotate(ErrnoStatus("create " + temp), context);
  FILE* file = fdopen(fd, "wb");
  if (file == nullptr) {
    close(fd);
    unlink(temp.c_str());
    return Annotate(ErrnoStatus("fdopen " + temp), context);
  }
  bool keep = false;
  absl::Cleanup cleanup = [&] {
    if (file != nullptr) fclose(file);
    if (!keep) unlink(temp.c_str());
  };

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (curl == nullptr)
    return absl::InternalError(context + ": curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, WriteToFile);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, file);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      curl.get(), CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    long http = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
    std::string cause = error[0] != '\0' ? error : curl_easy_strerror(rc);
    absl::StatusCode code = http == 404 ? absl::StatusCode::kNotFound
                                        : absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat(context, ": ", cause));
  }
  if (fclose(file) != 0) {
    file = nullptr;
    return Annotate(ErrnoStatus("write " + temp), context);
  }
  file = nullptr;

  if (!options.expected_sha256.empty() || options.expected_size != 0) {
    ASSIGN_OR_RETURN(std::string found, Annotate(Sha256File(temp), context));
    if (!options.expected_sha256.empty() && found != options.expected_sha256) {
      return absl::DataLossError(
          absl::StrCat(context, ": sha256 mismatch: expected ",
                       options.expected_sha256, ", found ", found));
    }
    if (options.expected_size != 0) {
      curl_off_t size = 0;
      curl_easy_getinfo(curl.get(), CURLINFO_SIZE_DOWNLOAD_T, &size);
      if (static_cast<uint64_t>(size) != options.expected_size) {
        return absl::DataLossError(
            absl::StrCat(context, ": size mismatch: expected ",
                         options.expected_size, " bytes, got ", size));
      }
    }
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("rename to ", path)), context);
  }
  keep = true;
  return absl::OkStatus();
}

}  // namespace fcvm::rootfs
