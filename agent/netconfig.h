#ifndef FCVM_AGENT_NETCONFIG_H_
#define FCVM_AGENT_NETCONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fcvm::agent {

// The guest's network identity through rtnetlink (no `ip` binary needed:
// the agent is static and the image may have none). Every call names the
// interface and the value in its errors.

// Brings `ifname` up.
[[nodiscard]] absl::Status SetLinkUp(const std::string& ifname);

// Sets the MAC address ("06:00:0a:c8:00:02"); no-op when it already is.
[[nodiscard]] absl::Status SetMacAddress(const std::string& ifname,
                                         const std::string& mac);

// The IPv4 addresses on `ifname`, as "a.b.c.d/prefix".
[[nodiscard]] absl::StatusOr<std::vector<std::string>> Ipv4Addresses(
    const std::string& ifname);

// Makes `ip_cidr` the interface's address: adds it, then removes every
// other IPv4 address except link-local ones (169.254/16, which the MMDS
// bootstrap uses). A clone moving to a new subnet ends with one address.
[[nodiscard]] absl::Status ReplaceIpv4Address(const std::string& ifname,
                                              const std::string& ip_cidr);

// Adds a route to `destination_cidr` through `ifname`, via `gateway` (or
// on-link when empty), replacing any route to the same destination.
[[nodiscard]] absl::Status ReplaceRoute(const std::string& destination_cidr,
                                        const std::string& gateway,
                                        const std::string& ifname);

// Forgets what `ifname` learned of its neighbours (IPv4 ARP entries that
// are not permanent); returns how many. After a snapshot restore they
// name the MACs of the snapshot's host side: a clone's TAP, gateway and
// MMDS have others, and a stale entry would hold its traffic until it
// expires (about 30 s).
[[nodiscard]] absl::StatusOr<int> FlushNeighbours(const std::string& ifname);

// The routes in the main table, as "dest/prefix via gw dev ifname" (for
// tests and diagnostics).
[[nodiscard]] absl::StatusOr<std::vector<std::string>> Ipv4Routes();

}  // namespace fcvm::agent

#endif  // FCVM_AGENT_NETCONFIG_H_
