#include "rootfs/testing/apk_fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/sha256.h"

namespace fcvm::rootfs::testing {
namespace {

la_ssize_t Append(archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer),
                                         length);
  return static_cast<la_ssize_t>(length);
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> TarSegment(
    const std::vector<TarItem>& items, bool terminate) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_per_block(a, 512);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, Append, nullptr);
  for (const TarItem& item : items) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, item.path.c_str());
    archive_entry_set_uid(e, item.uid);
    archive_entry_set_gid(e, item.gid);
    archive_entry_set_perm(e, item.mode);
    if (item.directory) {
      archive_entry_set_filetype(e, AE_IFDIR);
    } else if (!item.symlink.empty()) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, item.symlink.c_str());
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, item.data.size());
    }
    archive_write_header(a, e);
    if (!item.data.empty())
      archive_write_data(a, item.data.data(), item.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  if (!terminate) {
    if (out.size() < 1024) return absl::InternalError("tar too short");
    out.resize(out.size() - 1024);  // The two zero end-of-archive blocks.
  }
  return out;
}

[[nodiscard]] absl::StatusOr<std::string> GzipMember(const std::string& data) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
  archive_write_set_bytes_per_block(a, 1);
  archive_write_open(a, &out, nullptr, Append, nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, data.size());
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  const int rc = archive_write_close(a);
  archive_write_free(a);
  if (rc != ARCHIVE_OK) return absl::InternalError("gzip failed");
  return out;
}

[[nodiscard]] absl::StatusOr<std::string> MakeApk(
    const std::string& pkginfo, const std::vector<TarItem>& scripts,
    const std::vector<TarItem>& data, std::string* checksum) {
  absl::StatusOr<std::string> sign = TarSegment(
      {{.path = ".SIGN.RSA.fixture.rsa.pub", .data = "not a real signature"}});
  absl::StatusOr<std::string> data_tar = TarSegment(data, /*terminate=*/true);
  if (!sign.ok() || !data_tar.ok()) return absl::InternalError("tar failed");
  absl::StatusOr<std::string> data_member = GzipMember(*data_tar);
  if (!data_member.ok()) return data_member.status();
  std::vector<TarItem> control = {
      {.path = ".PKGINFO",
       .data = absl::StrCat(pkginfo, "datahash = ", Sha256Hex(*data_member),
                            "\n")}};
  control.insert(control.end(), scripts.begin(), scripts.end());
  absl::StatusOr<std::string> control_tar = TarSegment(control);
  if (!control_tar.ok()) return control_tar.status();
  absl::StatusOr<std::string> control_member = GzipMember(*control_tar);
  absl::StatusOr<std::string> sign_member = GzipMember(*sign);
  if (!control_member.ok() || !sign_member.ok())
    return absl::InternalError("gzip failed");
  if (checksum != nullptr) {
    unsigned char sha1[20];
    SHA1(reinterpret_cast<const unsigned char*>(control_member->data()),
         control_member->size(), sha1);
    unsigned char b64[64] = {};
    EVP_EncodeBlock(b64, sha1, sizeof(sha1));
    *checksum = absl::StrCat("Q1", reinterpret_cast<char*>(b64));
  }
  return *sign_member + *control_member + *data_member;
}

}  // namespace fcvm::rootfs::testing
