#include "rootfs/init/boot_config.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fcvm::init {

[[nodiscard]] absl::StatusOr<BootConfig> ParseBootConfig(
    absl::string_view cmdline) {
  BootConfig config;
  for (absl::string_view word :
       absl::StrSplit(absl::StripAsciiWhitespace(cmdline),
                      absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (!absl::StartsWith(word, "fcvm.")) continue;
    std::vector<absl::string_view> kv =
        absl::StrSplit(word, absl::MaxSplits('=', 1));
    const absl::string_view key = kv[0];
    if (kv.size() != 2 || kv[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kernel command line: '", word, "' has no value"));
    }
    const std::string value(kv[1]);
    if (key == "fcvm.disk") {
      config.disk = value;
    } else if (key == "fcvm.agent") {
      config.agent = value;
    } else if (key == "fcvm.hostname") {
      if (value.size() > 64) {
        return absl::InvalidArgumentError(absl::StrCat(
            "kernel command line: fcvm.hostname is longer than 64 bytes"));
      }
      config.hostname = value;
    } else if (key == "fcvm.plan") {
      // The guest agent's (a tiny plan, base64url JSON); it checks it.
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "kernel command line: unknown parameter '", key,
          "' (known: fcvm.disk, fcvm.agent, fcvm.hostname, fcvm.plan)"));
    }
  }
  return config;
}

}  // namespace fcvm::init
