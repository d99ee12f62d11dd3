#include "rootfs/image/assemble.h"

#include <sys/stat.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/sha256.h"
#include "base/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "rootfs/archive/apk_archive.h"
#include "rootfs/archive/deb_archive.h"
#include "rootfs/image/fixups.h"
#include "rootfs/image/unpack.h"

namespace fcvm::rootfs {
namespace {

const std::set<std::string>& KnownFixups() {
  static const auto* known = new std::set<std::string>{
      "merged-usr", "base-files",  "passwd",       "ca-certificates",
      "symlinks",   "dpkg-status", "busybox-links"};
  return *known;
}

constexpr char kPasswdMaster[] = "usr/share/base-passwd/passwd.master";
constexpr char kGroupMaster[] = "usr/share/base-passwd/group.master";
constexpr char kCaDir[] = "usr/share/ca-certificates/";
constexpr char kBaseFilesDir[] = "usr/share/base-files/";
constexpr char kBusyboxPaths[] = "etc/busybox-paths.d/busybox";
// Debian's fixed system groups (base-passwd).
constexpr uint32_t kMailGid = 8;
constexpr uint32_t kShadowGid = 42;
constexpr uint32_t kUtmpGid = 43;

// Installed size in bytes from a Debian control file (Installed-Size:, in
// KiB) or an apk .PKGINFO ("size = ", in bytes); 0 when absent.
uint64_t InstalledBytes(absl::string_view control) {
  for (absl::string_view line : absl::StrSplit(control, '\n')) {
    uint64_t value = 0;
    if (absl::ConsumePrefix(&line, "Installed-Size:")) {
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &value))
        return value * 1024;
    } else if (absl::ConsumePrefix(&line, "size = ")) {
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &value))
        return value;
    }
  }
  return 0;
}

// "/etc/x" -> "etc/x", refusing what would not name a path in the image.
[[nodiscard]] absl::StatusOr<std::string> ImagePath(absl::string_view path,
                                                    absl::string_view what) {
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " path '", path, "' is not absolute"));
  }
  return Annotate(NormalizeEntryPath(path),
                  absl::StrCat(what, " '", path, "'"));
}

FileEntry MakeEntry(FileEntry::Type type, std::string path, mode_t mode,
                    uint32_t gid = 0) {
  FileEntry entry;
  entry.type = type;
  entry.path = std::move(path);
  entry.mode = mode;
  entry.gid = gid;
  return entry;
}

// Reads a definition file's source, inside the image's folder.
[[nodiscard]] absl::StatusOr<std::string> ReadSource(
    const AssembleOptions& options, const ImageFile& file) {
  if (file.source().empty() || absl::StartsWith(file.source(), "/") ||
      absl::StrContains(file.source(), "..")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image '", options.definition.name(), "': file ", file.path(),
        " needs a source inside the image's "
        "folder, got '",
        file.source(), "'"));
  }
  return Annotate(
      ReadFile(absl::StrCat(options.definition_dir, "/", file.source())),
      absl::StrCat("image file ", file.path()));
}

[[nodiscard]] absl::Status CheckFixupNames(const ImageDefinition& definition,
                                           std::set<std::string>& fixups) {
  for (const MaintainerScripts& entry : definition.maintainer_scripts()) {
    if (!entry.has_fixup()) continue;
    if (!KnownFixups().count(entry.fixup())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image '", definition.name(), "': unknown fix-up '", entry.fixup(),
          "' (for ", absl::StrJoin(entry.packages(), ", "),
          "); known: ", absl::StrJoin(KnownFixups(), ", ")));
    }
    fixups.insert(entry.fixup());
  }
  return absl::OkStatus();
}

// Every locked archive, checked against the lock's sha256.
[[nodiscard]] absl::Status ReadPackages(
    const AssembleOptions& options, bool apk,
    std::vector<PreparedPackage>& packages) {
  for (const LockedPackage& locked : options.lock.packages()) {
    PreparedPackage p{&locked,
                      absl::StrCat(options.debs_dir, "/", locked.name(),
                                   apk ? ".apk" : ".deb"),
                      {}};
    ASSIGN_OR_RETURN(std::string sha256,
                     Annotate(Sha256File(p.archive),
                              absl::StrCat("package ", locked.name())));
    if (sha256 != locked.sha256()) {
      return absl::DataLossError(absl::StrCat(
          "package ", locked.name(), ": archive ", p.archive, " has sha256 ",
          sha256, " but the lock says ", locked.sha256()));
    }
    if (apk) {
      // .PKGINFO stands in for the control file; its scripts likewise.
      ASSIGN_OR_RETURN(ApkControl control,
                       Annotate(ReadApkControl(p.archive),
                                absl::StrCat("package ", locked.name())));
      p.control.control = std::move(control.pkginfo);
      p.control.scripts = std::move(control.scripts);
    } else {
      ASSIGN_OR_RETURN(p.control,
                       Annotate(ReadDebControl(p.archive),
                                absl::StrCat("package ", locked.name())));
    }
    packages.push_back(std::move(p));
  }
  if (packages.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lock for image '", options.lock.image(), "' has no packages"));
  }
  return absl::OkStatus();
}

// The digest of every input and the content's size.
[[nodiscard]] absl::Status DigestInputs(const AssembleOptions& options,
                                        PreparedImage& prepared) {
  std::string identity;
  std::string serialized;
  google::protobuf::io::StringOutputStream stream(&serialized);
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    options.definition.SerializeToCodedStream(&coded);
  }
  absl::StrAppend(&identity, Sha256Hex(serialized));
  uint64_t bytes = 0;
  for (const PreparedPackage& p : prepared.packages) {
    absl::StrAppend(&identity, p.locked->name(), "=", p.locked->sha256(), ";");
    bytes += InstalledBytes(p.control.control);
  }
  for (const ImageFile& file : options.definition.files()) {
    ASSIGN_OR_RETURN(std::string data, ReadSource(options, file));
    absl::StrAppend(&identity, file.path(), "=", Sha256Hex(data), ";");
    bytes += data.size();
  }
  for (const ExtraFile& file : options.extra_files) {
    ASSIGN_OR_RETURN(std::string sha256,
                     Annotate(Sha256File(file.source),
                              absl::StrCat("extra file ", file.path)));
    absl::StrAppend(&identity, file.path, "=", sha256, ";");
    struct stat st;
    if (stat(file.source.c_str(), &st) == 0) bytes += st.st_size;
  }
  prepared.input_digest = Sha256Hex(identity);
  prepared.content_bytes = bytes;
  return absl::OkStatus();
}

bool IsApk(const ImageDefinition& definition) {
  return definition.package_format() == "apk";
}

// Writes one image: the packages, the definition's entries and the fix-ups.
class Filler {
 public:
  Filler(const AssembleOptions& options, const PreparedImage& prepared,
         ImageSink& sink)
      : options_(options), prepared_(prepared), image_(sink) {}

  [[nodiscard]] absl::Status Run() {
    const ImageDefinition& definition = options_.definition;
    const std::set<std::string>& fixups = prepared_.fixups;
    const PathFilter filter(
        {definition.path_exclude().begin(), definition.path_exclude().end()},
        {definition.path_include().begin(), definition.path_include().end()});
    if (fixups.count("merged-usr")) RETURN_IF_ERROR(MergedUsr());
    if (fixups.count("base-files")) RETURN_IF_ERROR(BaseFilesLinks());
    for (const PreparedPackage& p : prepared_.packages) {
      RETURN_IF_ERROR((IsApk(definition) ? UnpackApk : UnpackDeb)(
          p.locked->name(), p.archive, image_,
          [this](const FileEntry& entry, absl::string_view data) {
            Capture(entry, data);
          },
          filter));
    }
    RETURN_IF_ERROR(AddDefinitionEntries());
    if (fixups.count("base-files")) RETURN_IF_ERROR(BaseFiles());
    if (fixups.count("passwd")) RETURN_IF_ERROR(Passwd());
    if (fixups.count("ca-certificates")) RETURN_IF_ERROR(CaCerts());
    if (fixups.count("dpkg-status")) RETURN_IF_ERROR(DpkgStatus());
    if (fixups.count("busybox-links")) RETURN_IF_ERROR(BusyboxLinks());
    return absl::OkStatus();
  }

 private:
  [[nodiscard]] absl::Status Add(const FileEntry& entry,
                                 absl::string_view data) {
    return image_.Add(entry, data);
  }

  [[nodiscard]] absl::Status MergedUsr() {
    for (const char* dir : {"bin", "sbin", "lib", "lib64"}) {
      RETURN_IF_ERROR(Add(MakeEntry(FileEntry::Type::kDirectory,
                                    absl::StrCat("usr/", dir), 0755),
                          ""));
      RETURN_IF_ERROR(AddSymlink(dir, absl::StrCat("usr/", dir)));
    }
    return absl::OkStatus();
  }

  [[nodiscard]] absl::Status AddSymlink(const std::string& path,
                                        const std::string& target) {
    FileEntry link = MakeEntry(FileEntry::Type::kSymlink, path, 0777);
    link.link_target = target;
    return Add(link, "");
  }

  [[nodiscard]] absl::Status AddDirectory(const std::string& path, mode_t mode,
                                          uint32_t gid = 0) {
    return Add(MakeEntry(FileEntry::Type::kDirectory, path, mode, gid), "");
  }

  // base-files' postinst, first part: /var/run and /var/lock are links into
  // /run, made before unpacking so packages' entries there follow them.
  [[nodiscard]] absl::Status BaseFilesLinks() {
    RETURN_IF_ERROR(AddDirectory("run", 0755));
    RETURN_IF_ERROR(AddDirectory("run/lock", 01777));
    RETURN_IF_ERROR(AddDirectory("var", 0755));
    RETURN_IF_ERROR(AddSymlink("var/run", "/run"));
    return AddSymlink("var/lock", "/run/lock");
  }

  // base-files' postinst on a first install: default dotfiles and profile
  // from /usr/share/base-files, the top-level and /usr/local directories,
  // and the login record files.
  [[nodiscard]] absl::Status BaseFiles() {
    for (const auto& [source, target] :
         std::vector<std::pair<std::string, std::string>>{
             {"profile", "etc/profile"},
             {"dot.profile", "root/.profile"},
             {"dot.bashrc", "root/.bashrc"},
             {"motd", "etc/motd"}}) {
      auto it = base_files_.find(source);
      if (it == base_files_.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "fix-up base-files: /", kBaseFilesDir, source,
            " was not unpacked (is base-files among the packages?)"));
      }
      RETURN_IF_ERROR(
          Add(MakeEntry(FileEntry::Type::kFile, target, 0644), it->second));
    }
    for (const char* dir : {"mnt", "srv", "opt", "etc/opt", "var/opt", "media"})
      RETURN_IF_ERROR(AddDirectory(dir, 0755));
    RETURN_IF_ERROR(AddDirectory("var/mail", 02775, kMailGid));
    RETURN_IF_ERROR(AddDirectory("var/spool", 0755));
    RETURN_IF_ERROR(AddSymlink("var/spool/mail", "../mail"));
    for (const char* dir : {"", "/share", "/share/man", "/bin", "/games",
                            "/lib", "/include", "/sbin", "/src", "/etc"}) {
      RETURN_IF_ERROR(AddDirectory(absl::StrCat("usr/local", dir), 0755));
    }
    RETURN_IF_ERROR(AddSymlink("usr/local/man", "share/man"));
    for (const auto& [path, mode] : std::vector<std::pair<std::string, mode_t>>{
             {"var/log/wtmp", 0664},
             {"var/log/btmp", 0660},
             {"var/log/lastlog", 0664}}) {
      RETURN_IF_ERROR(
          Add(MakeEntry(FileEntry::Type::kFile, path, mode, kUtmpGid), ""));
    }
    return absl::OkStatus();
  }

  void Capture(const FileEntry& entry, absl::string_view data) {
    if (entry.type != FileEntry::Type::kFile) return;
    if (entry.path == kBusyboxPaths) busybox_paths_ = std::string(data);
    absl::string_view base_file = entry.path;
    if (absl::ConsumePrefix(&base_file, kBaseFilesDir)) {
      base_files_[std::string(base_file)] = std::string(data);
    }
    if (entry.path == kPasswdMaster) passwd_master_ = std::string(data);
    if (entry.path == kGroupMaster) group_master_ = std::string(data);
    absl::string_view rest = entry.path;
    if (absl::ConsumePrefix(&rest, kCaDir) && absl::EndsWith(rest, ".crt")) {
      certs_[std::string(rest)] = std::string(data);
    }
  }

  [[nodiscard]] absl::Status AddDefinitionEntries() {
    const ImageDefinition& definition = options_.definition;
    for (const ImageDirectory& dir : definition.directories()) {
      ASSIGN_OR_RETURN(std::string path, ImagePath(dir.path(), "directory"));
      RETURN_IF_ERROR(Add(MakeEntry(FileEntry::Type::kDirectory, path,
                                    dir.mode() ? dir.mode() : 0755),
                          ""));
    }
    for (const ImageFile& file : definition.files()) {
      ASSIGN_OR_RETURN(std::string path, ImagePath(file.path(), "file"));
      ASSIGN_OR_RETURN(std::string data, ReadSource(options_, file));
      RETURN_IF_ERROR(Add(MakeEntry(FileEntry::Type::kFile, path,
                                    file.mode() ? file.mode() : 0644),
                          data));
    }
    for (const ExtraFile& file : options_.extra_files) {
      ASSIGN_OR_RETURN(std::string path, ImagePath(file.path, "extra file"));
      ASSIGN_OR_RETURN(std::string data, ReadFile(file.source));
      RETURN_IF_ERROR(
          Add(MakeEntry(FileEntry::Type::kFile, path, file.mode), data));
    }
    if (definition.symlinks_size() > 0 && !prepared_.fixups.count("symlinks")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image '", definition.name(),
          "' has symlinks but no maintainer_scripts entry with fix-up "
          "\"symlinks\" says which packages they stand in for"));
    }
    for (const ImageSymlink& symlink : definition.symlinks()) {
      ASSIGN_OR_RETURN(std::string path, ImagePath(symlink.path(), "symlink"));
      RETURN_IF_ERROR(AddSymlink(path, symlink.target()));
    }
    return absl::OkStatus();
  }

  [[nodiscard]] absl::Status Passwd() {
    if (passwd_master_.empty() || group_master_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "fix-up passwd: no /", kPasswdMaster, " or /", kGroupMaster,
          " was unpacked (is base-passwd among the packages?)"));
    }
    ASSIGN_OR_RETURN(
        PasswdFiles files,
        Annotate(MakePasswdFiles(passwd_master_, group_master_,
                                 options_.definition.source_date_epoch()),
                 "fix-up passwd"));
    RETURN_IF_ERROR(Add(MakeEntry(FileEntry::Type::kFile, "etc/passwd", 0644),
                        files.passwd));
    RETURN_IF_ERROR(
        Add(MakeEntry(FileEntry::Type::kFile, "etc/group", 0644), files.group));
    RETURN_IF_ERROR(
        Add(MakeEntry(FileEntry::Type::kFile, "etc/shadow", 0640, kShadowGid),
            files.shadow));
    return Add(
        MakeEntry(FileEntry::Type::kFile, "etc/gshadow", 0640, kShadowGid),
        files.gshadow);
  }

  [[nodiscard]] absl::Status CaCerts() {
    ASSIGN_OR_RETURN(CaCertificates ca, Annotate(MakeCaCertificates(certs_),
                                                 "fix-up ca-certificates"));
    RETURN_IF_ERROR(
        Add(MakeEntry(FileEntry::Type::kFile, "etc/ca-certificates.conf", 0644),
            ca.conf));
    RETURN_IF_ERROR(Add(MakeEntry(FileEntry::Type::kFile,
                                  "etc/ssl/certs/ca-certificates.crt", 0644),
                        ca.bundle));
    for (const auto& [name, target] : ca.links) {
      RETURN_IF_ERROR(AddSymlink(absl::StrCat("etc/ssl/certs/", name), target));
    }
    return absl::OkStatus();
  }

  // `busybox --install -s` (Alpine busybox's post-install), from the applet
  // paths the package lists in /etc/busybox-paths.d/busybox: a symlink to
  // /bin/busybox for each one no package ships itself.
  [[nodiscard]] absl::Status BusyboxLinks() {
    if (busybox_paths_.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("fix-up busybox-links: no /", kBusyboxPaths,
                       " was unpacked (is busybox among the packages?)"));
    }
    for (absl::string_view line :
         absl::StrSplit(busybox_paths_, '\n', absl::SkipEmpty())) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty()) continue;
      ASSIGN_OR_RETURN(std::string path, ImagePath(line, "busybox applet"));
      if (path == "bin/busybox") continue;
      absl::Status added = AddSymlink(path, "/bin/busybox");
      if (absl::IsAlreadyExists(added)) continue;  // A real program wins.
      RETURN_IF_ERROR(added);
    }
    return absl::OkStatus();
  }

  [[nodiscard]] absl::Status DpkgStatus() {
    std::vector<std::string> controls;
    for (const PreparedPackage& p : prepared_.packages) {
      controls.push_back(p.control.control);
    }
    return Add(MakeEntry(FileEntry::Type::kFile, "var/lib/dpkg/status", 0644),
               MakeDpkgStatus(controls));
  }

  const AssembleOptions& options_;
  const PreparedImage& prepared_;
  ImageSink& image_;
  // What fix-ups need from the unpacked packages.
  std::string passwd_master_, group_master_;
  std::map<std::string, std::string> certs_;
  std::map<std::string, std::string> base_files_;  // By name.
  std::string busybox_paths_;
};

}  // namespace

[[nodiscard]] absl::StatusOr<PreparedImage> PrepareImage(
    const AssembleOptions& options) {
  const ImageDefinition& definition = options.definition;
  if (!IsApk(definition) && !definition.package_format().empty() &&
      definition.package_format() != "deb") {
    return absl::InvalidArgumentError(absl::StrCat("package_format '",
                                                   definition.package_format(),
                                                   "' is neither deb nor apk"));
  }
  PreparedImage prepared;
  RETURN_IF_ERROR(CheckFixupNames(definition, prepared.fixups));
  RETURN_IF_ERROR(ReadPackages(options, IsApk(definition), prepared.packages));
  std::map<std::string, std::vector<std::string>> scripts;
  for (const PreparedPackage& p : prepared.packages) {
    scripts[p.locked->name()] = p.control.scripts;
    prepared.packages_with_scripts += !p.control.scripts.empty();
  }
  RETURN_IF_ERROR(CheckMaintainerScripts(definition, scripts));
  RETURN_IF_ERROR(DigestInputs(options, prepared));
  return prepared;
}

[[nodiscard]] absl::Status FillImage(const AssembleOptions& options,
                                     const PreparedImage& prepared,
                                     ImageSink& sink) {
  return Filler(options, prepared, sink).Run();
}

}  // namespace fcvm::rootfs
