#include "rootfs/lock/image_lock.h"

#include <archive.h>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "rootfs/archive/apk_archive.h"
#include "rootfs/lock/apk_index.h"
#include "rootfs/lock/apk_signature.h"
#include "rootfs/lock/debian_index.h"
#include "rootfs/lock/fetch.h"
#include "rootfs/lock/mirrors.h"
#include "rootfs/lock/release.h"
#include "rootfs/lock/resolver.h"

namespace fcvm::rootfs {
namespace {

// The decompressed contents of a .xz/.gz (or plain) file, via libarchive.
[[nodiscard]] absl::StatusOr<std::string> Decompress(const std::string& path) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  std::string out;
  absl::Status status;
  archive_entry* entry;
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK ||
      archive_read_next_header(a, &entry) != ARCHIVE_OK) {
    status = absl::DataLossError(
        absl::StrCat("decompress ", path, ": ", archive_error_string(a)));
  } else {
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) out.append(buf, n);
    if (n < 0) {
      status = absl::DataLossError(
          absl::StrCat("decompress ", path, ": ", archive_error_string(a)));
    }
  }
  archive_read_free(a);
  if (!status.ok()) return status;
  return out;
}

// Reads every component index of `source` for `arch`, verified.
[[nodiscard]] absl::Status ReadSource(const PackageSource& source,
                                      const std::string& arch,
                                      const LockOptions& options,
                                      std::vector<PackageRecord>* records) {
  ASSIGN_OR_RETURN(std::string root, FindMirrorRoot(source.mirror()));
  const std::string dists = absl::StrCat(root, "/dists/", source.suite());
  const std::string prefix = absl::StrCat(options.scratch_dir, "/",
                                          source.mirror(), "-", source.suite());
  RETURN_IF_ERROR(FetchToFile(
      dists + "/InRelease", prefix + "-InRelease",
      {.what = "InRelease of " + source.suite(), .timeout = absl::Minutes(2)}));
  ASSIGN_OR_RETURN(std::string signed_text,
                   VerifyInRelease(prefix + "-InRelease", options.keyrings,
                                   options.scratch_dir));
  ASSIGN_OR_RETURN(
      Release release,
      Annotate(ParseRelease(signed_text), absl::StrCat(dists, "/InRelease")));
  for (const std::string& component : source.components()) {
    const std::string index =
        absl::StrCat(component, "/binary-", arch, "/Packages.xz");
    auto it = release.sha256.find(index);
    if (it == release.sha256.end()) {
      return absl::NotFoundError(absl::StrCat(
          dists, "/InRelease lists no ", index, " (suite ", source.suite(),
          " has no ", component, " for ", arch, "?)"));
    }
    const std::string local =
        absl::StrCat(prefix, "-", component, "-", arch, "-Packages.xz");
    RETURN_IF_ERROR(FetchToFile(absl::StrCat(dists, "/", index), local,
                                {.what = index,
                                 .expected_sha256 = it->second.sha256,
                                 .expected_size = it->second.size}));
    ASSIGN_OR_RETURN(std::string text, Decompress(local));
    ASSIGN_OR_RETURN(std::vector<PackageRecord> parsed,
                     ParsePackagesIndex(text, absl::StrCat(dists, "/", index)));
    for (PackageRecord& r : parsed) {
      r.mirror = source.mirror();
      records->push_back(std::move(r));
    }
  }
  return absl::OkStatus();
}

struct ApkSourced {
  ApkRecord record;
  std::string mirror;
  std::string index_dir;  // <suite>/<component>/<arch>, relative to the root.
};

[[nodiscard]] absl::StatusOr<Lockfile> LockApk(const ImageDefinition& image,
                                               const std::string& arch,
                                               const LockOptions& options) {
  std::vector<ApkRecord> records;
  std::map<std::pair<std::string, std::string>, ApkSourced> where;
  for (const PackageSource& source : image.sources()) {
    ASSIGN_OR_RETURN(std::string root, FindMirrorRoot(source.mirror()));
    for (const std::string& component : source.components()) {
      const std::string dir =
          absl::StrCat(source.suite(), "/", component, "/", arch);
      const std::string url = absl::StrCat(root, "/", dir, "/APKINDEX.tar.gz");
      const std::string local = absl::StrCat(
          options.scratch_dir, "/", source.mirror(), "-", source.suite(), "-",
          component, "-", arch, "-APKINDEX.tar.gz");
      RETURN_IF_ERROR(FetchToFile(
          url, local,
          {.what = "APKINDEX of " + dir, .timeout = absl::Minutes(2)}));
      RETURN_IF_ERROR(VerifyApkSignature(local, options.apk_keys_dir).status());
      ASSIGN_OR_RETURN(std::string text, ReadApkIndexArchive(local));
      ASSIGN_OR_RETURN(std::vector<ApkRecord> parsed, ParseApkIndex(text, url));
      for (ApkRecord& r : parsed) {
        // The first source that lists a package version wins.
        where.emplace(std::make_pair(r.name, r.version),
                      ApkSourced{r, source.mirror(), dir});
        records.push_back(std::move(r));
      }
    }
  }
  std::vector<std::string> roots(image.packages().begin(),
                                 image.packages().end());
  ASSIGN_OR_RETURN(std::vector<ApkRecord> closure,
                   ResolveApkClosure(records, roots));
  Lockfile lock;
  lock.set_image(image.name());
  lock.set_architecture(arch);
  *lock.mutable_sources() = image.sources();
  for (const ApkRecord& r : closure) {
    const ApkSourced& s = where.at({r.name, r.version});
    ASSIGN_OR_RETURN(std::string root, FindMirrorRoot(s.mirror));
    const std::string path = absl::StrCat(s.index_dir, "/", r.FileName());
    const std::string local =
        absl::StrCat(options.scratch_dir, "/", r.FileName());
    RETURN_IF_ERROR(
        FetchToFile(absl::StrCat(root, "/", path), local,
                    {.what = "package " + r.name, .expected_size = r.size}));
    RETURN_IF_ERROR(Annotate(VerifyApkPackage(local, r.checksum),
                             absl::StrCat("package ", r.name)));
    ASSIGN_OR_RETURN(std::string sha256, Sha256File(local));
    LockedPackage* p = lock.add_packages();
    p->set_name(r.name);
    p->set_version(r.version);
    p->set_architecture(r.arch);
    p->set_mirror(s.mirror);
    p->set_path(path);
    p->set_size(r.size);
    p->set_sha256(sha256);
  }
  return lock;
}

}  // namespace

[[nodiscard]] absl::StatusOr<Lockfile> LockImage(const ImageDefinition& image,
                                                 const std::string& arch,
                                                 const LockOptions& options) {
  const std::string context =
      absl::StrCat("locking image '", image.name(), "' for ", arch);
  if (image.sources().empty() || image.packages().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": the definition needs sources and packages"));
  }
  if (image.package_format() == "apk") {
    return Annotate(LockApk(image, arch, options), context);
  }
  if (!image.package_format().empty() && image.package_format() != "deb") {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": package_format '", image.package_format(),
                     "' is neither deb nor apk"));
  }
  std::vector<PackageRecord> records;
  for (const PackageSource& source : image.sources()) {
    RETURN_IF_ERROR(
        Annotate(ReadSource(source, arch, options, &records), context));
  }
  PackageUniverse universe(std::move(records), arch);
  std::vector<std::string> roots(image.packages().begin(),
                                 image.packages().end());
  ASSIGN_OR_RETURN(std::vector<const PackageRecord*> closure,
                   Annotate(ResolveClosure(universe, roots), context));
  Lockfile lock;
  lock.set_image(image.name());
  lock.set_architecture(arch);
  *lock.mutable_sources() = image.sources();
  for (const PackageRecord* r : closure) {
    LockedPackage* p = lock.add_packages();
    p->set_name(r->name);
    p->set_version(r->version_text);
    p->set_architecture(r->architecture);
    p->set_mirror(r->mirror);
    p->set_path(r->filename);
    p->set_size(r->size);
    p->set_sha256(r->sha256);
  }
  return lock;
}

}  // namespace fcvm::rootfs
