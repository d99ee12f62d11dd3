#ifndef FCVM_RUNNER_NET_TAP_H_
#define FCVM_RUNNER_NET_TAP_H_

// Host TAP devices for privileged networking: persistent (the VMM opens
// them by name), addressed with the host side of the VM's /30, up.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fcvm::runner::net {

// Every fcvm TAP is named kTapPrefix + 8 hex digits (the VM's id).
inline constexpr char kTapPrefix[] = "fc-";

std::string TapName(const std::string& vm_id);

// Creates TAP `name` (persistent), gives it `host_cidr`, lets packets from
// 127.0.0.0/8 be routed out of it (published ports reached through
// localhost), brings it up, and turns on IPv4 forwarding (the VM's egress).
// Fails, naming it, if it exists already.
[[nodiscard]] absl::Status CreateTap(const std::string& name,
                                     const std::string& host_cidr);

// Deletes TAP `name`; OK if there is none.
[[nodiscard]] absl::Status DeleteTap(const std::string& name);

// The fcvm TAPs that exist (for gc).
std::vector<std::string> ListTaps();

bool LinkExists(const std::string& name);

}  // namespace fcvm::runner::net

#endif  // FCVM_RUNNER_NET_TAP_H_
