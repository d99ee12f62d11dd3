#include "rootfs/lock/apk_signature.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"

namespace fcvm::rootfs {
namespace {

// Length of the gzip member starting at `offset` in `data`, found by
// inflating it; its uncompressed bytes go to `content` when given.
[[nodiscard]] absl::StatusOr<size_t> MemberLength(
    const std::string& data, size_t offset, const std::string& path,
    std::string* content = nullptr) {
  z_stream z = {};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return absl::InternalError("zlib inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
  z.avail_in = static_cast<uInt>(data.size() - offset);
  std::string sink(1 << 16, '\0');
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(sink.data());
    z.avail_out = static_cast<uInt>(sink.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (content != nullptr)
      content->append(sink.data(), sink.size() - z.avail_out);
  } while (rc == Z_OK);
  const size_t length = z.total_in;
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return absl::DataLossError(absl::StrCat(
        path, ": gzip member at byte ", offset, " is incomplete or corrupt"));
  }
  return length;
}

[[nodiscard]] absl::StatusOr<size_t> FirstMemberLength(
    const std::string& data, const std::string& path) {
  return MemberLength(data, 0, path);
}

std::string Hex(const unsigned char* digest, size_t size) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

struct Signature {
  std::string key;
  bool sha256 = false;
  std::string bytes;
};

// The .SIGN.* entry of the first member.
[[nodiscard]] absl::StatusOr<Signature> ReadSignature(const std::string& member,
                                                      const std::string& path) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(),
                                                archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), member.data(), member.size()) !=
      ARCHIVE_OK)
    return absl::DataLossError(
        absl::StrCat(path, ": ", archive_error_string(a.get())));
  archive_entry* entry;
  // The segment has no end-of-archive blocks: its one entry is enough.
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no signature (first segment unreadable: ",
                     archive_error_string(a.get()), ")"));
  }
  absl::string_view name = archive_entry_pathname(entry);
  Signature signature;
  if (absl::ConsumePrefix(&name, ".SIGN.RSA256.")) {
    signature.sha256 = true;
  } else if (!absl::ConsumePrefix(&name, ".SIGN.RSA.")) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": first entry is '", archive_entry_pathname(entry),
                     "', not a .SIGN.RSA signature"));
  }
  signature.key = std::string(name);
  if (signature.key.empty() || absl::StrContains(signature.key, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad signing key name '", signature.key, "'"));
  }
  signature.bytes.resize(static_cast<size_t>(archive_entry_size(entry)));
  if (archive_read_data(a.get(), signature.bytes.data(),
                        signature.bytes.size()) !=
      static_cast<la_ssize_t>(signature.bytes.size())) {
    return absl::DataLossError(absl::StrCat(path, ": truncated signature"));
  }
  return signature;
}

}  // namespace

[[nodiscard]] absl::Status VerifyApkPackage(const std::string& path,
                                            const std::string& checksum) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  ASSIGN_OR_RETURN(size_t sign_length, MemberLength(data, 0, path));
  std::string control_tar;
  ASSIGN_OR_RETURN(size_t control_length,
                   MemberLength(data, sign_length, path, &control_tar));
  unsigned char sha1[20];
  SHA1(reinterpret_cast<const unsigned char*>(data.data() + sign_length),
       control_length, sha1);
  unsigned char b64[64] = {};
  EVP_EncodeBlock(b64, sha1, sizeof(sha1));
  const std::string found = absl::StrCat("Q1", reinterpret_cast<char*>(b64));
  if (found != checksum) {
    return absl::DataLossError(
        absl::StrCat(path, ": control segment checksum is ", found,
                     " but the signed index says ", checksum));
  }
  // datahash from .PKGINFO (the control tar's text is enough to find it).
  const size_t at = control_tar.find("\ndatahash = ");
  if (at == std::string::npos) {
    return absl::DataLossError(
        absl::StrCat(path, ": .PKGINFO has no datahash"));
  }
  const std::string want = control_tar.substr(at + 12, 64);
  unsigned char sha256[32];
  const size_t data_offset = sign_length + control_length;
  SHA256(reinterpret_cast<const unsigned char*>(data.data() + data_offset),
         data.size() - data_offset, sha256);
  const std::string got = Hex(sha256, sizeof(sha256));
  if (got != want) {
    return absl::DataLossError(absl::StrCat(path, ": data segment sha256 is ",
                                            got, " but .PKGINFO says ", want));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::string> VerifyApkSignature(
    const std::string& path, const std::string& keys_dir) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  ASSIGN_OR_RETURN(size_t first, FirstMemberLength(data, path));
  ASSIGN_OR_RETURN(Signature signature,
                   ReadSignature(data.substr(0, first), path));
  const std::string key_path = absl::StrCat(keys_dir, "/", signature.key);
  absl::StatusOr<std::string> pem = ReadFile(key_path);
  if (!pem.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, " is signed by key '", signature.key, "', which is not in ",
        keys_dir, " (", pem.status().message(), ")"));
  }
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, ": not a PEM public key"));
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const absl::string_view signed_bytes = absl::string_view(data).substr(first);
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr,
                           signature.sha256 ? EVP_sha256() : EVP_sha1(),
                           nullptr, key) == 1 &&
      EVP_DigestVerify(
          ctx, reinterpret_cast<const unsigned char*>(signature.bytes.data()),
          signature.bytes.size(),
          reinterpret_cast<const unsigned char*>(signed_bytes.data()),
          signed_bytes.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": the signature by key '", signature.key,
                     "' does not verify (tampered or truncated)"));
  }
  return signature.key;
}

}  // namespace fcvm::rootfs
