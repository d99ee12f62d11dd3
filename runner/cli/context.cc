#include "runner/cli/context.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "release/version.h"
#include "runner/cache/startup_cache.h"
#include "runner/vm/run_flags.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner {

std::string Context::Resolve(const std::string& path) const {
  if (path.empty() || path[0] == '/') return path;
  return absl::StrCat(workdir, "/", path);
}

[[nodiscard]] absl::Status Context::Finish() {
  if (const char* bwd = std::getenv("BUILD_WORKING_DIRECTORY"); bwd && *bwd) {
    workdir = bwd;
  } else {
    char cwd[4096];
    workdir = getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : ".";
  }
  assets.arch = arch.empty() ? HostArch() : arch;
  if (assets.arch != "x86_64" && assets.arch != "aarch64") {
    return absl::InvalidArgumentError(
        absl::StrCat("--arch '", arch, "': x86_64 or aarch64"));
  }
  assets.kernel = Resolve(kernel);
  assets.rootfs = Resolve(rootfs);
  for (const auto& [flag, values, what, into] :
       {std::make_tuple("--oci", &oci, "NAME=ARCHIVE", &assets.oci),
        std::make_tuple("--image-rootfs", &image_rootfs, "NAME=EXT4",
                        &assets.image_rootfs)}) {
    for (const std::string& value : *values) {
      const size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, " '", value, "': expected ", what));
      }
      (*into)[value.substr(0, eq)] = Resolve(value.substr(eq + 1));
    }
  }
  RETURN_IF_ERROR(FindTheAssets());
  if (firecracker.empty()) {
    if (const char* fc = std::getenv("FCVM_FIRECRACKER"); fc && *fc) {
      firecracker = fc;
    }
  }
  if (firecracker.find('/') != std::string::npos)
    firecracker = Resolve(firecracker);
  store = StateStore(state_dir.empty() ? StateStore::DefaultRoot()
                                       : Resolve(state_dir));
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Context::FindTheAssets() {
  if (!kernel.empty() || !rootfs.empty()) {
    assets.source = "flags (--kernel, --rootfs)";
    return absl::OkStatus();
  }
  AssetSearch search;
  search.flag = assets_dir.empty() ? "" : Resolve(assets_dir);
  if (const char* env = std::getenv("FCVM_ASSETS"); env && *env) {
    search.env = Resolve(env);
  }
  search.self_exe = SelfArgv()[0];
  search.version = release::kVersion;
  std::vector<std::string> searched;
  ASSIGN_OR_RETURN(std::optional<FoundAssets> found,
                   FindAssets(search, &searched));
  if (!found.has_value()) {
    assets.source =
        absl::StrCat("none (looked in ", absl::StrJoin(searched, ", "), ")");
    return absl::OkStatus();
  }
  if (absl::Status used = UseRelease(*found, &assets); !used.ok()) {
    if (!search.flag.empty() || !search.env.empty()) return used;
    assets.source = absl::StrCat("none usable (", used.message(), ")");
    return absl::OkStatus();
  }
  release = std::move(found);
  return absl::OkStatus();
}

FactsRequest Context::Facts() const {
  FactsRequest request;
  request.assets = assets;
  request.state_root = store.root();
  request.firecracker = firecracker;
  request.resolve = [this](const std::string& path) { return Resolve(path); };
  request.note = [](const std::string& line) {
    std::fprintf(stderr, "fcvm: %s\n", line.c_str());
  };
  return request;
}

[[nodiscard]] absl::StatusOr<uint64_t> Context::CacheMaxBytes() const {
  if (cache_max_bytes.empty()) return kDefaultCacheMaxBytes;
  return ParseByteSize("--cache_max_bytes", cache_max_bytes);
}

std::vector<std::string> Context::SelfArgv() const {
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  return {length > 0 ? std::string(self, length) : "fcvm",
          absl::StrCat("--state_dir=", store.root())};
}

std::vector<std::string> Context::GlobalArgv() const {
  std::vector<std::string> argv = SelfArgv();
  auto add = [&argv](const char* flag, const std::string& value) {
    if (!value.empty()) argv.push_back(absl::StrCat(flag, "=", value));
  };
  add("--kernel", assets.kernel);
  add("--rootfs", assets.rootfs);
  add("--arch", arch);
  add("--firecracker", firecracker);
  add("--assets", Resolve(assets_dir));
  add("--cache_max_bytes", cache_max_bytes);
  for (const auto& [name, path] : assets.oci) {
    add("--oci", absl::StrCat(name, "=", path));
  }
  for (const auto& [name, path] : assets.image_rootfs) {
    add("--image-rootfs", absl::StrCat(name, "=", path));
  }
  return argv;
}

std::vector<std::string> Context::HolderArgv() const {
  std::vector<std::string> argv = SelfArgv();
  argv.push_back("netns-holder");
  return argv;
}

}  // namespace fcvm::runner
