#include "base/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm {
namespace {

struct CtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Ctx = std::unique_ptr<EVP_MD_CTX, CtxDeleter>;

Ctx NewCtx() {
  Ctx ctx(EVP_MD_CTX_new());
  // Allocation failure of a few bytes is not recoverable here.
  if (ctx == nullptr ||
      EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
  return ctx;
}

std::string Finish(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace

struct Sha256Stream::Impl {
  Ctx ctx = NewCtx();
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {}
Sha256Stream::~Sha256Stream() = default;
Sha256Stream::Sha256Stream(Sha256Stream&&) noexcept = default;
Sha256Stream& Sha256Stream::operator=(Sha256Stream&&) noexcept = default;

void Sha256Stream::Update(absl::string_view data) {
  EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size());
}

std::string Sha256Stream::Finish() {
  std::string hex = fcvm::Finish(impl_->ctx.get());
  impl_->ctx = NewCtx();
  return hex;
}

std::string Sha256Hex(absl::string_view data) {
  Ctx ctx = NewCtx();
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  return Finish(ctx.get());
}

[[nodiscard]] absl::StatusOr<std::string> Sha256File(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
  Ctx ctx = NewCtx();
  char buf[1 << 16];
  while (true) {
    ssize_t n = RetryEintr([&] { return ::read(fd.get(), buf, sizeof(buf)); });
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", path));
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(n));
  }
  return Finish(ctx.get());
}

}  // namespace fcvm
