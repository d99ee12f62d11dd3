#include "runner/vm/run_flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace fcvm::runner {
namespace {

[[nodiscard]] absl::Status Bad(absl::string_view flag, absl::string_view value,
                               absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " '", value, "': ", why));
}

[[nodiscard]] absl::StatusOr<uint32_t> ParsePort(absl::string_view text,
                                                 absl::string_view value) {
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text, &port) || port == 0 || port > 65535) {
    return Bad("--publish", value,
               absl::StrCat("'", text, "' is not a port (1-65535)"));
  }
  return port;
}

[[nodiscard]] absl::StatusOr<std::string> OneOf(
    const std::string& flag, const std::string& v,
    std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return v;
  }
  return Bad(flag, v,
             absl::StrCat("expected one of ", absl::StrJoin(allowed, ", ")));
}

// pflag (Podman's) accepts "-p=8080:80" for a short flag; CLI11 keeps the
// '='.
std::string DropEquals(const std::string& value) {
  return absl::StartsWith(value, "=") ? value.substr(1) : value;
}

// Suffixed sizes: b, k, m, g (powers of 1024); a bare number is bytes.
[[nodiscard]] absl::StatusOr<uint64_t> ParseSize(const std::string& flag,
                                                 const std::string& value) {
  std::string digits = absl::AsciiStrToLower(value);
  uint64_t scale = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'b':
        digits.pop_back();
        break;
      case 'k':
        scale = uint64_t{1} << 10;
        digits.pop_back();
        break;
      case 'm':
        scale = uint64_t{1} << 20;
        digits.pop_back();
        break;
      case 'g':
        scale = uint64_t{1} << 30;
        digits.pop_back();
        break;
    }
  }
  uint64_t number = 0;
  if (!absl::SimpleAtoi(digits, &number) ||
      number > (uint64_t{1} << 44) / scale) {
    return Bad(flag, value, "expected a size like 512m or 2g");
  }
  return number * scale;
}

}  // namespace

[[nodiscard]] absl::StatusOr<PublishedPort> ParsePublish(
    const std::string& value) {
  std::vector<absl::string_view> proto = absl::StrSplit(value, '/');
  PublishedPort port;
  port.set_protocol("tcp");
  if (proto.size() == 2) {
    if (proto[1] != "tcp" && proto[1] != "udp") {
      return Bad("--publish", value, "the protocol is tcp or udp");
    }
    port.set_protocol(std::string(proto[1]));
  } else if (proto.size() != 1) {
    return Bad("--publish", value, "expected HOST:GUEST[/tcp|udp]");
  }
  std::vector<absl::string_view> sides = absl::StrSplit(proto[0], ':');
  if (sides.size() > 2) {
    return Bad("--publish", value,
               "expected HOST:GUEST[/tcp|udp] (binding a host address is "
               "not supported)");
  }
  ASSIGN_OR_RETURN(uint32_t guest, ParsePort(sides.back(), value));
  ASSIGN_OR_RETURN(uint32_t host, ParsePort(sides.front(), value));
  port.set_host_port(host);
  port.set_guest_port(guest);
  return port;
}

[[nodiscard]] absl::StatusOr<VolumeFlag> ParseVolume(
    const std::string& value,
    const std::function<std::string(const std::string&)>& resolve) {
  std::vector<std::string> parts = absl::StrSplit(value, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return Bad("--volume", value, "expected HOST:GUEST[:ro|rw]");
  }
  VolumeFlag volume{parts[0], parts[1], false};
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") {
      return Bad("--volume", value,
                 absl::StrCat("unknown option '", parts[2], "' (ro or rw)"));
    }
    volume.read_only = parts[2] == "ro";
  }
  if (volume.host_path.empty()) {
    return Bad("--volume", value, "no host path");
  }
  if (!absl::StartsWith(volume.guest_path, "/")) {
    return Bad("--volume", value, "the path in the VM must be absolute");
  }
  if (!absl::StartsWith(volume.host_path, "/")) {
    volume.host_path = resolve(volume.host_path);
  }
  return volume;
}

[[nodiscard]] absl::StatusOr<uint32_t> ParseMemoryMib(
    const std::string& value) {
  ASSIGN_OR_RETURN(uint64_t bytes, ParseSize("--memory", value));
  if (bytes % (uint64_t{1} << 20) != 0) {
    return Bad("--memory", value, "a VM's memory is a whole number of MiB");
  }
  if (bytes < (uint64_t{64} << 20)) {
    return Bad("--memory", value, "a VM needs at least 64m");
  }
  return static_cast<uint32_t>(bytes >> 20);
}

[[nodiscard]] absl::StatusOr<uint64_t> ParseByteSize(const std::string& flag,
                                                     const std::string& value) {
  ASSIGN_OR_RETURN(uint64_t bytes, ParseSize(flag, value));
  if (bytes < (uint64_t{64} << 10)) return Bad(flag, value, "at least 64k");
  return bytes;
}

void AddRunFlags(CLI::App& app, RunFlagValues* v) {
  auto repeated = [&](const char* names, std::vector<std::string>* into,
                      const char* help) {
    app.add_option(names, *into, help)
        ->take_all()
        ->expected(1)
        ->allow_extra_args(false);
  };
  app.add_option("--name", v->name,
                 "the VM's name and hostname (default: from the image, "
                 "with a random suffix)");
  repeated("-p,--publish", &v->publish,
           "HOST:GUEST[/tcp|udp]: host port to guest port (repeatable; with "
           "none, a local image's exposed ports go to free ports)");
  repeated("-v,--volume", &v->volume,
           "HOST:GUEST[:ro|rw]: a disk image, block device, or (read-only) "
           "a directory copied into the VM");
  repeated("-e,--env", &v->env, "NAME=VALUE, or NAME for the host's value");
  app.add_option("-w,--workdir", v->workdir,
                 "working directory in the container");
  app.add_option("-u,--user", v->user, "user[:group] in the container");
  app.add_option("--entrypoint", v->entrypoint,
                 "replaces the image's entrypoint (one word)");
  app.add_option("--cpus", v->cpus, "vCPUs (a whole number)");
  app.add_option("-m,--memory", v->memory, "memory, e.g. 512m, 2g");
  app.add_flag("-d,--detach", v->detach,
               "leave the VM running in the background once it is ready");
  app.add_option("--restart", v->restart, "no | on-failure | always");
  app.add_option("--stop-timeout", v->stop_timeout,
                 "seconds between the container's SIGTERM and SIGKILL");
  app.add_option("--backend", v->backend, "auto | firecracker | qemu");
  app.add_option("--accel", v->accel, "auto | kvm | tcg");
  app.add_option("--network,--net", v->network,
                 "auto | tap | user | pasta | slirp4netns | rootless | none");
  app.add_option("--log-max-size", v->log_max_size,
                 "each of console.log and container.log keeps this much, "
                 "plus one rotated file (default 8m)");
  app.add_flag("--no-cache", v->no_cache,
               "boot cold and store no startup snapshot (runner/cache/)");
  app.add_option("--template", v->template_name,
                 "start from template NAME's snapshot (fcvm template build); "
                 "no IMAGE then");
  repeated("-l,--label", &v->label,
           "KEY=VALUE kept with the VM (repeatable; inspect shows them)");
  app.add_option("--timeout", v->timeout,
                 "stop the VM this many seconds after it starts (0: never)");
  app.add_flag("--rm", v->rm, "remove the VM once it has ended");
  // For `fcvm api` (runner/api/sandboxes.h), not for users.
  app.add_option("--api-template", v->api_template)->group("");
  app.prefix_command();
}

[[nodiscard]] absl::StatusOr<RunFlags> FinishRunFlags(
    const RunFlagValues& v, const std::vector<std::string>& remaining,
    const std::function<const char*(const char*)>& getenv,
    const std::function<std::string(const std::string&)>& resolve) {
  RunFlags flags;
  flags.name = v.name;
  for (const std::string& value : v.publish) {
    ASSIGN_OR_RETURN(PublishedPort port, ParsePublish(DropEquals(value)));
    flags.ports.push_back(port);
  }
  for (const std::string& value : v.volume) {
    ASSIGN_OR_RETURN(VolumeFlag volume,
                     ParseVolume(DropEquals(value), resolve));
    flags.volumes.push_back(volume);
  }
  for (const std::string& e : v.env) {
    const size_t eq = e.find('=');
    if (e.empty() || eq == 0) return Bad("--env", e, "expected NAME=VALUE");
    if (eq != std::string::npos) {
      flags.env[e.substr(0, eq)] = e.substr(eq + 1);
    } else if (const char* from_host = getenv(e.c_str())) {
      flags.env[e] = from_host;  // Podman's "-e NAME": the host's value.
    }
  }
  flags.workdir = v.workdir;
  flags.user = v.user;
  if (!v.entrypoint.empty()) flags.entrypoint = {v.entrypoint};
  if (!absl::SimpleAtoi(v.cpus, &flags.cpus) || flags.cpus == 0) {
    return Bad("--cpus", v.cpus, "a VM takes a whole number of vCPUs (>= 1)");
  }
  ASSIGN_OR_RETURN(flags.memory_mib, ParseMemoryMib(v.memory));
  flags.detach = v.detach;
  ASSIGN_OR_RETURN(std::string restart, OneOf("--restart", v.restart,
                                              {"no", "on-failure", "always"}));
  flags.restart = restart == "always"       ? agent::RESTART_ALWAYS
                  : restart == "on-failure" ? agent::RESTART_ON_FAILURE
                                            : agent::RESTART_NO;
  flags.stop_timeout_seconds = v.stop_timeout;
  ASSIGN_OR_RETURN(flags.backend, OneOf("--backend", v.backend,
                                        {"auto", "firecracker", "qemu"}));
  ASSIGN_OR_RETURN(flags.accel,
                   OneOf("--accel", v.accel, {"auto", "kvm", "tcg"}));
  ASSIGN_OR_RETURN(flags.network, OneOf("--network", v.network,
                                        {"auto", "tap", "user", "pasta",
                                         "slirp4netns", "rootless", "none"}));
  ASSIGN_OR_RETURN(flags.log_max_bytes,
                   ParseByteSize("--log-max-size", v.log_max_size));

  flags.no_cache = v.no_cache;
  flags.template_name = v.template_name;
  for (const std::string& l : v.label) {
    const std::string label = DropEquals(l);
    const size_t eq = label.find('=');
    if (label.empty() || eq == 0)
      return Bad("--label", l, "expected KEY=VALUE");
    // Podman's "--label KEY": an empty value.
    flags.labels[label.substr(0, eq)] =
        eq == std::string::npos ? "" : label.substr(eq + 1);
  }
  flags.timeout_seconds = v.timeout;
  flags.remove_on_exit = v.rm;
  flags.api_template = v.api_template;
  size_t i = 0;
  if (i < remaining.size() && remaining[i] == "--")
    ++i;
  else if (i < remaining.size() && absl::StartsWith(remaining[i], "-")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown flag '", remaining[i], "' (fcvm run --help lists them)"));
  }
  if (!flags.template_name.empty()) {
    if (i < remaining.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--template ", flags.template_name, " runs the template's image: '",
          remaining[i], "' is one too many (no IMAGE with --template)"));
    }
    return flags;
  }
  if (i >= remaining.size()) {
    return absl::InvalidArgumentError(
        "no image: fcvm run [FLAGS] IMAGE [COMMAND [ARG...]]");
  }
  flags.image = remaining[i++];
  flags.args.assign(remaining.begin() + i, remaining.end());
  return flags;
}

[[nodiscard]] absl::StatusOr<RunFlags> ParseRunFlags(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv) {
  CLI::App app("fcvm run");
  RunFlagValues values;
  AddRunFlags(app, &values);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return FinishRunFlags(values, app.remaining(), getenv,
                        [](const std::string& path) { return path; });
}

}  // namespace fcvm::runner
