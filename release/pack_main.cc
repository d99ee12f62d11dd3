// fcvm-pack: writes a release tarball (release/pack.h). Run by the
// fcvm_release rule (release/release.bzl), not by hand:
//   fcvm-pack --out=OUT.tar.gz --version=V --arch=ARCH --info_file=STATUS
//       --exe=bin/fcvm=PATH --file=DEST=PATH... --input=NAME=PATH...
//       --kernel=vmlinux --kernel_config=kernel.config --rootfs=base.ext4
//       --image=NAME=OCI[,ROOTFS]...
// The commit and the mtime come from Bazel's stable status file
// (tools/workspace_status.sh: STABLE_FCVM_COMMIT,
// STABLE_FCVM_SOURCE_DATE_EPOCH).
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "release/pack.h"

namespace fcvm::release {
namespace {

bool SplitPair(const std::string& value, std::string* key, std::string* rest) {
  const size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
    return false;
  *key = value.substr(0, eq);
  *rest = value.substr(eq + 1);
  return true;
}

int Main(int argc, char** argv) {
  CLI::App app("fcvm-pack: write a release tarball", "fcvm-pack");
  std::string out, version, arch, info_file, kernel, kernel_config, rootfs;
  std::vector<std::string> files, exes, inputs, images;
  app.add_option("--out", out)->required();
  app.add_option("--version", version)->required();
  app.add_option("--arch", arch)->required();
  app.add_option("--info_file", info_file);
  app.add_option("--kernel", kernel)->required();
  app.add_option("--kernel_config", kernel_config);
  app.add_option("--rootfs", rootfs)->required();
  app.add_option("--file", files);
  app.add_option("--exe", exes);
  app.add_option("--input", inputs);
  app.add_option("--image", images);
  CLI11_PARSE(app, argc, argv);

  PackRequest request;
  request.out = out;
  ReleaseManifest& manifest = request.manifest;
  manifest.set_version(version);
  manifest.set_arch(arch);
  manifest.set_kernel(kernel);
  manifest.set_kernel_config(kernel_config);
  manifest.set_rootfs(rootfs);
  manifest.set_commit("unknown");
  if (!info_file.empty()) {
    absl::StatusOr<std::string> status = ReadFile(info_file);
    if (!status.ok()) {
      std::fprintf(stderr, "fcvm-pack: %s\n",
                   std::string(status.status().message()).c_str());
      return 1;
    }
    for (absl::string_view line : absl::StrSplit(*status, '\n')) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      int64_t epoch = 0;
      if (kv.first == "STABLE_FCVM_COMMIT" && !kv.second.empty()) {
        manifest.set_commit(kv.second);
      } else if (kv.first == "STABLE_FCVM_SOURCE_DATE_EPOCH" &&
                 absl::SimpleAtoi(kv.second, &epoch)) {
        manifest.set_source_date_epoch(epoch);
      }
    }
  }
  for (const auto& [list, executable] :
       {std::make_pair(&files, false), std::make_pair(&exes, true)}) {
    for (const std::string& value : *list) {
      PackFile file;
      if (!SplitPair(value, &file.path, &file.source)) {
        std::fprintf(stderr, "fcvm-pack: '%s': expected DEST=PATH\n",
                     value.c_str());
        return 2;
      }
      file.executable = executable;
      request.files.push_back(file);
    }
  }
  for (const std::string& value : inputs) {
    PackInput input;
    if (!SplitPair(value, &input.name, &input.source)) {
      std::fprintf(stderr, "fcvm-pack: '%s': expected NAME=PATH\n",
                   value.c_str());
      return 2;
    }
    request.inputs.push_back(input);
  }
  for (const std::string& value : images) {
    std::string name, paths;
    if (!SplitPair(value, &name, &paths)) {
      std::fprintf(stderr, "fcvm-pack: '%s': expected NAME=OCI[,ROOTFS]\n",
                   value.c_str());
      return 2;
    }
    std::pair<std::string, std::string> parts =
        absl::StrSplit(paths, absl::MaxSplits(',', 1));
    ImageAssets* image = manifest.add_images();
    image->set_name(name);
    image->set_oci(parts.first);
    image->set_rootfs(parts.second);
  }
  if (absl::Status packed = Pack(request); !packed.ok()) {
    std::fprintf(stderr, "fcvm-pack: %s\n",
                 std::string(packed.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace fcvm::release

int main(int argc, char** argv) { return fcvm::release::Main(argc, argv); }
