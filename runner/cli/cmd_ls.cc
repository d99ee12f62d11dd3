// fcvm ls [--json]: every VM, newest state, without taking any lock.
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "runner/cli/cli.h"

namespace fcvm::runner {
namespace {

std::string Status(const VmState& s) {
  const bool live_phase =
      s.phase() == VmState::CREATING || s.phase() == VmState::BOOTING ||
      s.phase() == VmState::RUNNING || s.phase() == VmState::STOPPING;
  if (live_phase && !SupervisorAlive(s)) return "dead (fcvm gc)";
  std::string phase = absl::AsciiStrToLower(VmState::Phase_Name(s.phase()));
  if (s.phase() == VmState::EXITED)
    absl::StrAppend(&phase, " (", s.exit_code(), ")");
  return phase;
}

}  // namespace

int LsCommand(Cli& cli, const std::vector<std::string>& args) {
  bool json = false;
  for (const std::string& arg : args) {
    if (arg == "--json") {
      json = true;
    } else {
      return Complain(2, absl::StrCat("ls: unknown argument '", arg, "'"));
    }
  }
  absl::StatusOr<std::vector<VmState>> all = cli.store.List();
  if (!all.ok()) return Complain(1, std::string(all.status().message()));
  if (json) {
    std::vector<std::string> items;
    for (const VmState& s : *all) {
      std::string item;
      (void)google::protobuf::util::MessageToJsonString(s, &item);
      items.push_back(item);
    }
    std::printf("[%s]\n", absl::StrJoin(items, ",\n").c_str());
    return 0;
  }
  std::printf("%-24s %-18s %-28s %-10s %s\n", "NAME", "STATUS", "IMAGE",
              "BACKEND", "PORTS");
  for (const VmState& s : *all) {
    std::vector<std::string> ports;
    for (const agent::PortMapping& p : s.ports()) {
      ports.push_back(absl::StrCat("127.0.0.1:", p.host_port(), "->",
                                   p.guest_port(), "/", p.protocol()));
    }
    std::printf(
        "%-24s %-18s %-28s %-10s %s\n", s.name().c_str(), Status(s).c_str(),
        s.image().c_str(),
        absl::StrCat(s.backend(), s.accel().empty() ? "" : "/", s.accel())
            .c_str(),
        absl::StrJoin(ports, ", ").c_str());
  }
  return 0;
}

}  // namespace fcvm::runner
