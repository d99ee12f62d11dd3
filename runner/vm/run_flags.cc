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

absl::Status Bad(absl::string_view flag, absl::string_view value,
                 absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " '", value, "': ", why));
}

absl::StatusOr<uint32_t> ParsePort(absl::string_view text,
                                   absl::string_view value) {
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text, &port) || port == 0 || port > 65535) {
    return Bad("--publish", value,
               absl::StrCat("'", text, "' is not a port (1-65535)"));
  }
  return port;
}

}  // namespace

absl::StatusOr<agent::PortMapping> ParsePublish(const std::string& value) {
  std::vector<absl::string_view> proto = absl::StrSplit(value, '/');
  agent::PortMapping port;
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
  absl::StatusOr<uint32_t> guest = ParsePort(sides.back(), value);
  if (!guest.ok()) return guest.status();
  absl::StatusOr<uint32_t> host = ParsePort(sides.front(), value);
  if (!host.ok()) return host.status();
  port.set_host_port(*host);
  port.set_guest_port(*guest);
  return port;
}

absl::StatusOr<VolumeFlag> ParseVolume(const std::string& value) {
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
  if (!absl::StartsWith(volume.host_path, "/") ||
      !absl::StartsWith(volume.guest_path, "/")) {
    return Bad("--volume", value, "both paths must be absolute");
  }
  return volume;
}

absl::StatusOr<uint32_t> ParseMemoryMib(const std::string& value) {
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
    return Bad("--memory", value, "expected a size like 512m or 2g");
  }
  const uint64_t bytes = number * scale;
  if (bytes % (uint64_t{1} << 20) != 0) {
    return Bad("--memory", value, "a VM's memory is a whole number of MiB");
  }
  if (bytes < (uint64_t{64} << 20)) {
    return Bad("--memory", value, "a VM needs at least 64m");
  }
  return static_cast<uint32_t>(bytes >> 20);
}

absl::StatusOr<RunFlags> ParseRunFlags(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv) {
  RunFlags flags;
  auto one_of = [](const std::string& flag, const std::string& v,
                   std::initializer_list<const char*> allowed,
                   std::string* out) -> absl::Status {
    for (const char* a : allowed) {
      if (v == a) {
        *out = v;
        return absl::OkStatus();
      }
    }
    return Bad(flag, v,
               absl::StrCat("expected one of ", absl::StrJoin(allowed, ", ")));
  };
  using Setter = std::function<absl::Status(const std::string&)>;
  // Flags that take a value, as "--flag value" or "--flag=value".
  const std::vector<std::pair<std::vector<std::string>, Setter>> valued = {
      {{"--name"},
       [&](const std::string& v) {
         flags.name = v;
         return absl::OkStatus();
       }},
      {{"-p", "--publish"},
       [&](const std::string& v) -> absl::Status {
         absl::StatusOr<agent::PortMapping> port = ParsePublish(v);
         if (!port.ok()) return port.status();
         flags.ports.push_back(*port);
         return absl::OkStatus();
       }},
      {{"-v", "--volume"},
       [&](const std::string& v) -> absl::Status {
         absl::StatusOr<VolumeFlag> volume = ParseVolume(v);
         if (!volume.ok()) return volume.status();
         flags.volumes.push_back(*volume);
         return absl::OkStatus();
       }},
      {{"-e", "--env"},
       [&](const std::string& v) -> absl::Status {
         const size_t eq = v.find('=');
         if (v.empty() || eq == 0)
           return Bad("--env", v, "expected NAME=VALUE");
         if (eq != std::string::npos) {
           flags.env[v.substr(0, eq)] = v.substr(eq + 1);
         } else if (const char* from_host = getenv(v.c_str())) {
           flags.env[v] = from_host;  // Podman's "-e NAME": the host's value.
         }
         return absl::OkStatus();
       }},
      {{"--cpus"},
       [&](const std::string& v) -> absl::Status {
         if (!absl::SimpleAtoi(v, &flags.cpus) || flags.cpus == 0) {
           return Bad("--cpus", v, "a VM takes a whole number of vCPUs (>= 1)");
         }
         return absl::OkStatus();
       }},
      {{"-m", "--memory"},
       [&](const std::string& v) -> absl::Status {
         absl::StatusOr<uint32_t> mib = ParseMemoryMib(v);
         if (!mib.ok()) return mib.status();
         flags.memory_mib = *mib;
         return absl::OkStatus();
       }},
      {{"--restart"},
       [&](const std::string& v) -> absl::Status {
         std::string policy;
         RETURN_IF_ERROR(
             one_of("--restart", v, {"no", "on-failure", "always"}, &policy));
         flags.restart = policy == "always"       ? agent::RESTART_ALWAYS
                         : policy == "on-failure" ? agent::RESTART_ON_FAILURE
                                                  : agent::RESTART_NO;
         return absl::OkStatus();
       }},
      {{"--backend"},
       [&](const std::string& v) {
         return one_of("--backend", v, {"auto", "firecracker", "qemu"},
                       &flags.backend);
       }},
      {{"--accel"},
       [&](const std::string& v) {
         return one_of("--accel", v, {"auto", "kvm", "tcg"}, &flags.accel);
       }},
      {{"--network", "--net"},
       [&](const std::string& v) {
         return one_of("--network", v,
                       {"auto", "tap", "user", "pasta", "slirp4netns",
                        "rootless", "none"},
                       &flags.network);
       }},
  };

  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.empty() || arg[0] != '-') break;  // IMAGE: flags end here.
    if (arg == "-d" || arg == "--detach") {
      flags.detach = true;
      continue;
    }
    bool matched = false;
    for (const auto& [names, set] : valued) {
      for (const std::string& name : names) {
        std::string value;
        if (absl::StartsWith(arg, name + "=")) {
          value = arg.substr(name.size() + 1);
        } else if (arg == name) {
          if (i + 1 >= args.size()) {
            return absl::InvalidArgumentError(
                absl::StrCat(name, " needs a value"));
          }
          value = args[++i];
        } else {
          continue;
        }
        RETURN_IF_ERROR(set(value));
        matched = true;
        break;
      }
      if (matched) break;
    }
    if (!matched) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg, "' (fcvm run --help)"));
    }
  }
  if (i >= args.size()) {
    return absl::InvalidArgumentError(
        "no image: fcvm run [FLAGS] IMAGE [COMMAND [ARG...]]");
  }
  flags.image = args[i++];
  flags.args.assign(args.begin() + i, args.end());
  return flags;
}

}  // namespace fcvm::runner
