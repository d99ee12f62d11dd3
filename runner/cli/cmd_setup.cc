// fcvm setup install TARBALL [--prefix DIR] [--public-key KEY
//     [--signature SIG]] | ls | rm VERSION [-f] | preflight:
// releases installed on this host (runner/setup/install.h, release/README.md).
// install checks SHA256SUMS (and the signature), refuses a tarball for
// another CPU, unpacks atomically into PREFIX/VERSION and points
// PREFIX/current at it; rm is refused while a VM uses the version.
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "runner/cli/command.h"
#include "runner/setup/install.h"
#include "runner/state/lease.h"
#include "runner/vmm/kvm.h"

namespace fcvm::runner {
namespace {

// Live VMs (their owner holds the lease) of this state store whose kernel
// or disks are under `dir`.
absl::StatusOr<std::vector<std::string>> Users(const StateStore& store,
                                               const std::string& dir) {
  std::vector<std::string> users;
  struct stat st;
  if (stat(store.root().c_str(), &st) != 0) return users;  // No VM ever.
  absl::StatusOr<std::vector<StoreEntry>> entries = store.List();
  if (!entries.ok()) return entries.status();
  const std::string under = absl::StrCat(dir, "/");
  for (const StoreEntry& entry : *entries) {
    if (!entry.state.ok() || !Lease::Held(entry.dir)) continue;
    const VmSpec& spec = entry.state->spec();
    bool uses = absl::StartsWith(spec.kernel(), under);
    for (const auto& disk : spec.disks()) {
      uses = uses || absl::StartsWith(disk.path(), under);
    }
    if (uses) users.push_back(entry.name);
  }
  return users;
}

int Install(Context& ctx, const setup::InstallOptions& given) {
  setup::InstallOptions options = given;
  options.tarball = ctx.Resolve(options.tarball);
  options.prefix = ctx.Resolve(options.prefix);
  if (!options.public_key.empty()) {
    options.public_key = ctx.Resolve(options.public_key);
  }
  if (!options.signature.empty()) {
    options.signature = ctx.Resolve(options.signature);
  }
  options.host_arch = HostArch();
  options.users = [&ctx](const std::string& dir) {
    return Users(ctx.store, dir);
  };
  options.progress = [](const std::string& line) {
    std::fprintf(stderr, "fcvm: %s\n", line.c_str());
  };
  const absl::Time start = absl::Now();
  absl::StatusOr<setup::Installed> installed = setup::Install(options);
  if (!installed.ok()) return Complain(1, installed.status());
  std::fprintf(
      stderr,
      "fcvm: %s %s (%s, commit %s) in %s, %.1f MiB%s; %s/current -> %s\n",
      installed->already ? "already installed:" : "installed",
      installed->version.c_str(), installed->arch.c_str(),
      installed->commit.c_str(), installed->dir.c_str(),
      installed->bytes / 1048576.0,
      installed->already
          ? ""
          : absl::StrCat(" in ",
                         absl::FormatDuration(absl::Trunc(
                             absl::Now() - start, absl::Milliseconds(1))))
                .c_str(),
      options.prefix.c_str(), installed->version.c_str());
  std::printf("%s/bin/fcvm\n", installed->dir.c_str());
  return 0;
}

int List(Context& ctx, const std::string& prefix) {
  absl::StatusOr<std::vector<setup::InstalledVersion>> versions =
      setup::ListInstalled(ctx.Resolve(prefix));
  if (!versions.ok()) return Complain(1, versions.status());
  std::printf("%-12s %-8s %-10s %9s  %-8s %s\n", "VERSION", "ARCH", "COMMIT",
              "SIZE", "CURRENT", "IN USE BY");
  for (const setup::InstalledVersion& v : *versions) {
    absl::StatusOr<std::vector<std::string>> users = Users(ctx.store, v.dir);
    std::printf("%-12s %-8s %-10s %7.1f M  %-8s %s\n", v.version.c_str(),
                v.arch.c_str(), v.commit.substr(0, 10).c_str(),
                v.bytes / 1048576.0, v.current ? "*" : "",
                users.ok() ? absl::StrJoin(*users, ",").c_str()
                           : std::string(users.status().message()).c_str());
  }
  return 0;
}

int Remove(Context& ctx, const std::string& prefix, const std::string& version,
           bool force) {
  absl::Status removed = setup::RemoveInstalled(
      ctx.Resolve(prefix), version, force,
      [&ctx](const std::string& dir) { return Users(ctx.store, dir); });
  if (!removed.ok()) return Complain(1, removed);
  std::printf("%s\n", version.c_str());
  return 0;
}

}  // namespace

Command SetupCommand() {
  return {"setup",
          "releases on this host: install, ls, rm, preflight",
          {},
          [](CLI::App& app, Context& ctx) -> std::function<int()> {
            auto chosen = std::make_shared<std::function<int()>>();
            app.require_subcommand(1);
            auto options = std::make_shared<setup::InstallOptions>();
            auto prefix = std::make_shared<std::string>(setup::kDefaultPrefix);
            CLI::App* install = app.add_subcommand(
                "install",
                "check a release tarball and unpack it into PREFIX/VERSION "
                "(atomically), then point PREFIX/current at it");
            install
                ->add_option("TARBALL", options->tarball,
                             "fcvm-VERSION-linux-ARCH.tar.gz")
                ->required();
            install->add_option("--public-key", options->public_key,
                                "signify-openbsd public key: the signature "
                                "of SHA256SUMS must verify with it");
            install->add_option("--signature", options->signature,
                                "the signature (default: TARBALL.sig)");
            for (CLI::App* sub : {install}) {
              sub->add_option("--prefix", *prefix,
                              "where releases go (default /var/lib/fcvm)");
            }
            install->callback([&ctx, chosen, options, prefix] {
              *chosen = [&ctx, options, prefix] {
                options->prefix = *prefix;
                return Install(ctx, *options);
              };
            });
            CLI::App* ls = app.add_subcommand("ls", "installed releases");
            ls->alias("list");
            ls->add_option("--prefix", *prefix, "default /var/lib/fcvm");
            ls->callback([&ctx, chosen, prefix] {
              *chosen = [&ctx, prefix] { return List(ctx, *prefix); };
            });
            auto version = std::make_shared<std::string>();
            auto force = std::make_shared<bool>(false);
            CLI::App* rm = app.add_subcommand(
                "rm",
                "remove an installed release (refused while a VM uses "
                "it)");
            rm->add_option("VERSION", *version, "fcvm setup ls")->required();
            rm->add_option("--prefix", *prefix, "default /var/lib/fcvm");
            rm->add_flag("-f,--force", *force,
                         "also the version PREFIX/current points at");
            rm->callback([&ctx, chosen, prefix, version, force] {
              *chosen = [&ctx, prefix, version, force] {
                return Remove(ctx, *prefix, *version, *force);
              };
            });
            CLI::App* preflight = app.add_subcommand(
                "preflight",
                "what this host can run, and the Debian packages it lacks");
            preflight->callback([&ctx, chosen] {
              *chosen = [&ctx] { return PrintPreflight(ctx); };
            });
            return [chosen] { return (*chosen)(); };
          }};
}

}  // namespace fcvm::runner
